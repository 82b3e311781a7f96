// createStrategy: the one entry the coordinator calls, from a spec it read on chain; it never needs to know which strategy runs.
import { parseStrategySpec, type StrategyName, type StrategySpec } from './spec.ts';
import type { Strategy, StrategyEnv } from './strategy.ts';
import type { NamedTensor } from './tensors.ts';
import { FedAvg } from './fedavg.ts';
import { FedAvgM } from './fedavgm.ts';
import { FedAdam } from './fedadam.ts';
import { FedYogi } from './fedyogi.ts';
import { FedAdagrad } from './fedadagrad.ts';
import { Median } from './median.ts';
import { TrimmedMean } from './trimmed-mean.ts';
import { Krum } from './krum.ts';
import { DpFedAvg } from './dp-fedavg.ts';

type Ctor = new (spec: StrategySpec, weights: NamedTensor[], env: StrategyEnv) => Strategy;
const STRATEGIES: Record<StrategyName, Ctor> = {
  fedavg: FedAvg,
  fedavgm: FedAvgM,
  fedadam: FedAdam,
  fedyogi: FedYogi,
  fedadagrad: FedAdagrad,
  median: Median,
  'trimmed-mean': TrimmedMean,
  krum: Krum,
  'multi-krum': Krum,
  'dp-fedavg': DpFedAvg,
};

export interface CreateStrategyOptions {
  /** 'auto' (default): WebAssembly SIMD kernels when the runtime has them and the model fits wasm32 memory, else JS. */
  backend?: 'auto' | 'wasm' | 'js';
}

/**
 * Builds a strategy from a spec (validated here: pass the raw JSON from chain) and the round's base weights.
 * Throws E_STRATEGY_SPEC for a bad spec and E_WEIGHTS for bad weights.
 */
export function createStrategy(
  spec: unknown,
  weights: NamedTensor[],
  options: CreateStrategyOptions = {},
): Strategy {
  const parsed = parseStrategySpec(spec);
  return new STRATEGIES[parsed.name](parsed, weights, { backend: options.backend ?? 'auto' });
}
