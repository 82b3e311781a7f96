// Public face of model/: configs, the transformer and its heads, LoRA, training, evaluation, generation, backends, safetensors.
export { ModelError } from './errors.ts';
export {
  LORA_TARGETS,
  PAD_ID,
  PRESETS,
  VOCAB_SIZE,
  modelConfig,
  validateConfig,
  type LoraConfig,
  type LoraTarget,
  type ModelConfig,
  type PresetName,
} from './config.ts';
export {
  BACKEND_CHOICES,
  backendFlavour,
  currentBackend,
  initBackend,
  type BackendChoice,
  type InitBackendParameters,
  type InitBackendResult,
} from './backend.ts';
export {
  countParams,
  createModel,
  disposeModel,
  isLoraParam,
  lmHead,
  paramSpecs,
  trainableNames,
  trunk,
  type ForwardOptions,
  type Model,
  type ParamSpec,
} from './gpt.ts';
export {
  classProbabilities,
  classifierLogits,
  packClassBatch,
  sameTrunk,
  withClassifierHead,
  type ClassExample,
} from './classifier.ts';
export { addLora, frozenNames, mergeLora } from './lora.ts';
export {
  getWeights,
  setWeights,
  subtractWeights,
  type GetWeightsOptions,
  type NamedTensor,
  type NamedTensors,
  type SetWeightsOptions,
} from './weights.ts';
export { learningRate, type OptimiserName, type OptimiserOptions, type Schedule } from './optim.ts';
export {
  batchLoss,
  makeBatch,
  trainLocal,
  type Batch,
  type Example,
  type LmExample,
  type StepInfo,
  type TrainLocalParameters,
  type TrainLocalResult,
} from './train.ts';
export { evaluate, type EvaluateOptions, type EvaluateResult } from './evaluate.ts';
export { generate, sample, type GenerateOptions } from './generate.ts';
export { defaultAttention, matMul2d, type AttentionMode, type AttentionOptions } from './ops.ts';
export { blockAttention } from './attention.ts';
export { fusedAttention, gemm, kernelsActive, KERNELS_VERSION } from './kernels.ts';
export {
  modelFromSafetensors,
  modelToSafetensors,
  parseSidecarConfig,
  readSafetensors,
  sidecarConfig,
  writeSafetensors,
  type SafetensorsDtype,
  type SafetensorsTensor,
  type SidecarConfig,
  type WriteSafetensorsOptions,
} from './safetensors.ts';
export { createRng, permutation, type Rng } from './rng.ts';
