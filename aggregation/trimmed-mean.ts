// Coordinate-wise trimmed mean (Yin et al. 2018): per parameter, drop the floor(beta·n) largest and smallest values and average the rest; unweighted.
import { BufferedStrategy } from './buffered.ts';
import type { StrategyEnv } from './strategy.ts';
import type { StrategySpec } from './spec.ts';
import { sgd } from './server.ts';
import type { NamedTensor } from './tensors.ts';
import { fail } from './errors.ts';

export class TrimmedMean extends BufferedStrategy {
  constructor(spec: StrategySpec, weights: NamedTensor[], env: StrategyEnv) {
    super(spec, weights, sgd(spec.options.serverLr), env);
  }
  protected reduce() {
    const n = this.store.count;
    const b = Math.floor(this.spec.options.beta * n);
    if (n - 2 * b < 1)
      fail(
        'E_NOT_ENOUGH_UPDATES',
        `trimmed mean with beta ${this.spec.options.beta} leaves nothing of ${n} updates`,
      );
    const metrics = this.clipAdaptive();
    return {
      delta: this.store.sortedMean(b, n - b),
      divisor: 1,
      included: [...this.workers],
      metrics: { ...metrics, trimmed: b },
    };
  }
}
