// aggregation/: strategies, robust aggregators, server optimisers, differential privacy and update codecs. Imports nothing of ours.
export { AggregationError, type AggregationErrorCode } from './errors.ts';
export {
  type NamedTensor,
  type SparseTensor,
  type TensorSpec,
  type Layout,
  layoutOf,
  flatten,
  unflatten,
  sizeOf,
} from './tensors.ts';
export {
  STRATEGY_NAMES,
  OPTION_KEYS,
  parseStrategySpec,
  specToJSON,
  type StrategyName,
  type StrategySpec,
  type StrategyOptions,
  type ClipSpec,
} from './spec.ts';
export {
  aggregateEvaluate,
  DEFAULT_FIT,
  type FitConfig,
  type Strategy,
  type ClientUpdate,
  type SparseClientUpdate,
  type AnyClientUpdate,
  type AcceptResult,
  type RoundConfig,
  type RoundOptions,
  type AggregateResult,
  type EvaluateResult,
} from './strategy.ts';
export { createStrategy, type CreateStrategyOptions } from './create.ts';
export { encodeState, decodeState, type StrategyState } from './state.ts';
export { krumScores } from './krum.ts';
export { RdpAccountant, rdpSampledGaussian, epsilonFromRdp, DEFAULT_ORDERS } from './accountant.ts';
export { seededRng, seededRngFromString, secureRng, type Rng } from './rng.ts';
export { simdAvailable } from './kernels/simd.ts';
export {
  CODECS,
  encodeUpdate,
  decodeUpdate,
  decodeSparseUpdate,
  SPARSE_CODECS,
  MAX_NAME_BYTES,
  MAX_TENSORS,
  compressionRatio,
  createTopKState,
  type CodecName,
  type EncodeOptions,
  type DecodeSpec,
  type TopKState,
} from './codecs.ts';
export { decodeClientUpdate } from './decode.ts';
