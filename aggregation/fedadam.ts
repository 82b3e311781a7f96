// FedAdam (Reddi et al. 2021, "Adaptive Federated Optimization"): FedAvg's weighted mean as the pseudo-gradient of a server-side Adam.
import { StreamingStrategy } from './streaming.ts';
import type { AnyClientUpdate, StrategyEnv } from './strategy.ts';
import type { StrategySpec } from './spec.ts';
import { adaptive } from './server.ts';
import { layoutOf, type NamedTensor } from './tensors.ts';

export class FedAdam extends StreamingStrategy {
  constructor(spec: StrategySpec, weights: NamedTensor[], env: StrategyEnv) {
    super(spec, weights, adaptive('adam', spec.options, layoutOf(weights).size), env);
  }
  protected weightOf(update: AnyClientUpdate): number {
    return update.samples;
  }
}
