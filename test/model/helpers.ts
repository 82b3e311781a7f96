// Shared test fixtures for model/: tiny configs and synthetic data.
import { expect } from 'chai';
import { createRng } from '../../model/rng.ts';
import { modelConfig, type ClassExample, type ModelConfig } from '../../model/index.ts';

export const tinyLm = (overrides: Partial<ModelConfig> = {}): ModelConfig =>
  modelConfig('tiny', { context: 16, ...overrides });

/** LM windows over a repeating byte pattern, t+1 tokens each. */
export function lmWindows(count: number, t: number, seed = 1): Int32Array[] {
  const rng = createRng(seed);
  return Array.from({ length: count }, () => {
    const start = rng.int(26);
    return Int32Array.from({ length: t + 1 }, (_, j) => 97 + ((start + j) % 26));
  });
}

/** Label 1 when the sequence holds byte 120 ('x'), else 0: learnable from any position. */
export function classExamples(count: number, seed = 2): ClassExample[] {
  const rng = createRng(seed);
  return Array.from({ length: count }, () => {
    const n = 4 + rng.int(8);
    const label = rng.int(2);
    const tokens = Int32Array.from({ length: n }, () => 97 + rng.int(20));
    if (label === 1) tokens[rng.int(n)] = 120;
    return { tokens, label };
  });
}

/**
 * Every element of `actual` within `tolerance` of `expected` (a number, or one computed from the expected element), and
 * the same length: what `actual.forEach((x, j) => expect(x).to.be.closeTo(expected[j], tol))` checks, as one chai
 * assertion on the first element that is off, since tens of thousands of chai assertions cost seconds of CPU.
 */
export function expectAllClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance: number | ((expected: number) => number),
  what = 'element',
): void {
  expect(actual.length, `${what}: length`).to.equal(expected.length);
  for (let j = 0; j < actual.length; j++) {
    const e = expected[j]!;
    const tol = typeof tolerance === 'number' ? tolerance : tolerance(e);
    // Written as chai's closeTo is, so NaN is never close.
    if (!(Math.abs(actual[j]! - e) <= tol)) expect(actual[j], `${what} ${j}`).to.be.closeTo(e, tol);
  }
}
