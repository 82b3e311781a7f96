// Krum and Multi-Krum (Blanchard et al. 2017): score each update by the summed squared distances to its n-f-2 nearest others; Krum keeps the best one, Multi-Krum averages the m best (sample-weighted).
import { BufferedStrategy } from './buffered.ts';
import type { StrategyEnv } from './strategy.ts';
import type { StrategySpec } from './spec.ts';
import { sgd } from './server.ts';
import type { NamedTensor } from './tensors.ts';
import { fail } from './errors.ts';

/** Krum scores from a row-major n x n squared-distance matrix. */
export function krumScores(d: Float64Array, n: number, f: number): number[] {
  const k = n - f - 2;
  const scores: number[] = [];
  const row: number[] = [];
  for (let i = 0; i < n; i++) {
    row.length = 0;
    for (let j = 0; j < n; j++) if (j !== i) row.push(d[i * n + j]!);
    row.sort((a, b) => a - b);
    let s = 0;
    for (let r = 0; r < k; r++) s += row[r]!;
    scores.push(s);
  }
  return scores;
}

export class Krum extends BufferedStrategy {
  constructor(spec: StrategySpec, weights: NamedTensor[], env: StrategyEnv) {
    super(spec, weights, sgd(spec.options.serverLr), env);
  }
  protected reduce() {
    const n = this.store.count;
    const { f } = this.spec.options;
    if (n < 2 * f + 3)
      fail(
        'E_NOT_ENOUGH_UPDATES',
        `${this.spec.name} with f=${f} needs at least ${2 * f + 3} updates, got ${n}`,
      );
    const metrics = this.clipAdaptive();
    const scores = krumScores(this.store.distances(), n, f);
    const m = this.spec.name === 'krum' ? 1 : Math.min(n, this.spec.options.m ?? n - f);
    const order = scores.map((s, i) => [s, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const selected = order.slice(0, m).map(([, i]) => i);
    selected.sort((a, b) => a - b);
    const delta = this.store.weightedMean(
      selected,
      selected.map((i) => this.samples[i]!),
    );
    return {
      delta,
      divisor: 1,
      included: selected.map((i) => this.workers[i]!),
      metrics: { ...metrics, selected: m, krumScoreBest: order[0]![0], krumScoreWorst: order[n - 1]![0] },
    };
  }
}
