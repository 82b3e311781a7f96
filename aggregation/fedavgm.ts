// FedAvgM (Hsu et al. 2019): FedAvg's weighted mean fed to server momentum.
import { StreamingStrategy } from './streaming.ts';
import type { AnyClientUpdate, StrategyEnv } from './strategy.ts';
import type { StrategySpec } from './spec.ts';
import { momentum } from './server.ts';
import { layoutOf, type NamedTensor } from './tensors.ts';

export class FedAvgM extends StreamingStrategy {
  constructor(spec: StrategySpec, weights: NamedTensor[], env: StrategyEnv) {
    super(spec, weights, momentum(spec.options.serverLr, spec.options.momentum, layoutOf(weights).size), env);
  }
  protected weightOf(update: AnyClientUpdate): number {
    return update.samples;
  }
}
