// Shared test fixtures for model/: tiny configs and synthetic data.
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
