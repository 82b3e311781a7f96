// Coordinate-wise median (Yin et al. 2018): per parameter, the middle of the workers' values (mean of the two middle ones for even n); unweighted.
import { BufferedStrategy } from './buffered.ts';
import type { StrategyEnv } from './strategy.ts';
import type { StrategySpec } from './spec.ts';
import { sgd } from './server.ts';
import type { NamedTensor } from './tensors.ts';

export class Median extends BufferedStrategy {
  constructor(spec: StrategySpec, weights: NamedTensor[], env: StrategyEnv) {
    super(spec, weights, sgd(spec.options.serverLr), env);
  }
  protected reduce() {
    const metrics = this.clipAdaptive();
    const n = this.store.count;
    const lo = (n - 1) >> 1;
    const hi = n % 2 ? lo + 1 : lo + 2;
    return { delta: this.store.sortedMean(lo, hi), divisor: 1, included: [...this.workers], metrics };
  }
}
