// FedAvg (McMahan et al. 2017): the sample-weighted mean of the deltas, applied with a server learning rate. FedProx needs nothing more here: its mu travels to workers in the round config.
import { StreamingStrategy } from './streaming.ts';
import type { AnyClientUpdate, StrategyEnv } from './strategy.ts';
import type { StrategySpec } from './spec.ts';
import { sgd } from './server.ts';
import type { NamedTensor } from './tensors.ts';

export class FedAvg extends StreamingStrategy {
  constructor(spec: StrategySpec, weights: NamedTensor[], env: StrategyEnv) {
    super(spec, weights, sgd(spec.options.serverLr), env);
  }
  protected weightOf(update: AnyClientUpdate): number {
    return update.samples;
  }
}
