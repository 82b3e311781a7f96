// The model's one plain config object, its named presets and its validation.
import { ModelError } from './errors.ts';

/** The projections a LoRA adapter can sit on, named as in the parameter names (`h.0.attn.c_attn.w`). */
export const LORA_TARGETS = ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];

export interface LoraConfig {
  rank: number;
  /** The adapter's output is scaled by alpha / rank. */
  alpha: number;
  targets: LoraTarget[];
  /**
   * Train B only (FFA-LoRA, Sun et al. 2024): A stays at its seeded init, the same on every trainer, so a weighted mean
   * of the trainers' B is exactly that of their A@B. Default false: both train.
   */
  freezeA?: boolean;
}

export interface ModelConfig {
  kind: 'lm' | 'classifier';
  /** Byte-level tokenizer: 256 bytes + BOS, EOS, PAD, CLS. */
  vocabSize: number;
  /** Longest sequence the model sees (position embeddings). */
  context: number;
  dModel: number;
  nLayer: number;
  nHead: number;
  dMlp: number;
  /** Dropout on the embeddings and on each residual branch while training; 0 turns it off. */
  dropout: number;
  /** Classifier only: how many labels. */
  numLabels?: number;
  /** Classifier only: the padding id; the head reads the last position that is not padding. */
  padId?: number;
  lora?: LoraConfig;
}

export const VOCAB_SIZE = 260;
export const PAD_ID = 258;

const base = { kind: 'lm', vocabSize: VOCAB_SIZE, dropout: 0 } as const;

/** Named sizes. `tiny` trains in seconds (tests, CI); `small` is the demo model; the rest want a GPU backend. */
export const PRESETS = {
  tiny: { ...base, context: 32, dModel: 32, nLayer: 1, nHead: 2, dMlp: 128 },
  small: { ...base, context: 64, dModel: 128, nLayer: 2, nHead: 4, dMlp: 512 },
  medium: { ...base, context: 128, dModel: 256, nLayer: 4, nHead: 4, dMlp: 1024 },
  large: { ...base, context: 256, dModel: 512, nLayer: 8, nHead: 8, dMlp: 2048 },
  xl: { ...base, context: 512, dModel: 768, nLayer: 12, nHead: 12, dMlp: 3072 },
} satisfies Record<string, ModelConfig>;
export type PresetName = keyof typeof PRESETS;

/** A preset with overrides, validated: `modelConfig('small', { kind: 'classifier', numLabels: 2 })`. */
export function modelConfig(preset: PresetName, overrides: Partial<ModelConfig> = {}): ModelConfig {
  const p: ModelConfig | undefined = PRESETS[preset];
  if (p === undefined) {
    throw new ModelError(
      'E_MODEL_PRESET',
      `unknown preset "${preset}"; expected one of ${Object.keys(PRESETS).join(', ')}`,
    );
  }
  return validateConfig({ ...p, ...overrides });
}

function positiveInt(config: ModelConfig, key: keyof ModelConfig): void {
  const v = config[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    throw new ModelError('E_MODEL_CONFIG', `config.${key} must be a positive integer, got ${String(v)}`);
  }
}

/** Checks a config (from a file, the chain or the CLI) and returns it; throws E_MODEL_CONFIG saying what is wrong. */
export function validateConfig(config: ModelConfig): ModelConfig {
  if (config === null || typeof config !== 'object')
    throw new ModelError('E_MODEL_CONFIG', 'config must be an object');
  if (config.kind !== 'lm' && config.kind !== 'classifier') {
    throw new ModelError(
      'E_MODEL_CONFIG',
      `config.kind must be "lm" or "classifier", got ${String(config.kind)}`,
    );
  }
  for (const key of ['vocabSize', 'context', 'dModel', 'nLayer', 'nHead', 'dMlp'] as const)
    positiveInt(config, key);
  if (config.dModel % config.nHead !== 0) {
    throw new ModelError(
      'E_MODEL_CONFIG',
      `config.dModel (${config.dModel}) must be a multiple of nHead (${config.nHead})`,
    );
  }
  if (typeof config.dropout !== 'number' || !(config.dropout >= 0 && config.dropout < 1)) {
    throw new ModelError('E_MODEL_CONFIG', `config.dropout must be in [0, 1), got ${String(config.dropout)}`);
  }
  if (config.kind === 'classifier') {
    positiveInt(config, 'numLabels');
    if ((config.numLabels ?? 0) < 2)
      throw new ModelError('E_MODEL_CONFIG', 'config.numLabels must be at least 2');
  }
  if (
    config.padId !== undefined &&
    !(Number.isInteger(config.padId) && config.padId >= 0 && config.padId < config.vocabSize)
  ) {
    throw new ModelError(
      'E_MODEL_CONFIG',
      `config.padId must be a token id below vocabSize, got ${config.padId}`,
    );
  }
  if (config.lora !== undefined) {
    const { rank, alpha, targets, freezeA } = config.lora;
    if (!Number.isInteger(rank) || rank < 1)
      throw new ModelError('E_MODEL_CONFIG', `config.lora.rank must be a positive integer, got ${rank}`);
    if (typeof alpha !== 'number' || !Number.isFinite(alpha))
      throw new ModelError('E_MODEL_CONFIG', 'config.lora.alpha must be a number');
    if (!Array.isArray(targets) || targets.length === 0) {
      throw new ModelError(
        'E_MODEL_CONFIG',
        `config.lora.targets must name at least one of ${LORA_TARGETS.join(', ')}`,
      );
    }
    for (const t of targets) {
      if (!LORA_TARGETS.includes(t)) {
        throw new ModelError(
          'E_MODEL_CONFIG',
          `unknown LoRA target "${t}"; expected one of ${LORA_TARGETS.join(', ')}`,
        );
      }
    }
    if (freezeA !== undefined && typeof freezeA !== 'boolean')
      throw new ModelError(
        'E_MODEL_CONFIG',
        `config.lora.freezeA must be true or false, got ${JSON.stringify(freezeA)}`,
      );
  }
  return config;
}
