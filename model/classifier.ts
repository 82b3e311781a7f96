// The sequence-classification head: the trunk's state at each sequence's last non-padding token, through cls.w/cls.b.
import * as tf from '@tensorflow/tfjs';
import { PAD_ID, validateConfig, type ModelConfig } from './config.ts';
import { ModelError } from './errors.ts';
import { createModel, param, trunk, type ForwardOptions, type Model } from './gpt.ts';
import { matMul2d } from './ops.ts';

export interface ClassExample {
  tokens: Int32Array;
  label: number;
}

/** Pads (right, with padId) or truncates each example to t tokens; returns row-major ids and each last real position. */
export function packClassBatch(model: Model, examples: readonly ClassExample[], t = model.config.context) {
  const pad = model.config.padId ?? PAD_ID;
  const ids = new Int32Array(examples.length * t).fill(pad);
  const last = new Int32Array(examples.length);
  const labels = new Int32Array(examples.length);
  examples.forEach((ex, i) => {
    const n = Math.min(ex.tokens.length, t);
    if (n === 0) throw new ModelError('E_MODEL_INPUT', `classification example ${i} has no tokens`);
    if (!Number.isInteger(ex.label) || ex.label < 0 || ex.label >= (model.config.numLabels ?? 0)) {
      throw new ModelError(
        'E_MODEL_INPUT',
        `label ${ex.label} of example ${i} is outside 0..${(model.config.numLabels ?? 0) - 1}`,
      );
    }
    ids.set(ex.tokens.subarray(0, n), i * t);
    // Causal attention: padding after the last real token never reaches it.
    let j = n - 1;
    while (j > 0 && ids[i * t + j] === pad) j--;
    last[i] = j;
    labels[i] = ex.label;
  });
  return { ids, last, labels, t };
}

/** Class logits [b, numLabels] for ids [b*t] with each sequence's last real position. Call inside tf.tidy. */
export function classifierLogits(
  model: Model,
  ids: Int32Array,
  last: Int32Array,
  t: number,
  options: ForwardOptions = {},
): tf.Tensor2D {
  if (model.config.kind !== 'classifier')
    throw new ModelError('E_MODEL_KIND', 'classifierLogits needs a classifier model');
  const b = last.length;
  const hidden = trunk(model, ids, b, t, options); // [b*t, d]
  // Picking rows as a one-hot [b, b*t] matmul keeps the gradient a 2-D matmul (gather's has no wasm kernel).
  const sel = new Float32Array(b * b * t);
  for (let i = 0; i < b; i++) sel[i * b * t + i * t + last[i]!] = 1;
  const pooled = matMul2d(tf.tensor2d(sel, [b, b * t]), hidden); // [b, d]
  return tf.add(matMul2d(pooled, param(model, 'cls.w') as tf.Tensor2D), param(model, 'cls.b')) as tf.Tensor2D;
}

/** Each text's label probabilities (softmax over the head's logits); tokens framed as in training: text, CLS, PAD. */
export function classProbabilities(model: Model, tokens: readonly Int32Array[]): Float32Array[] {
  const { ids, last, t } = packClassBatch(
    model,
    tokens.map((tk) => ({ tokens: tk, label: 0 })),
  );
  const probsT = tf.tidy(() => tf.softmax(classifierLogits(model, ids, last, t)));
  const probs = probsT.dataSync() as Float32Array;
  probsT.dispose();
  const k = model.config.numLabels ?? 0;
  return tokens.map((_, i) => probs.slice(i * k, (i + 1) * k));
}

/**
 * A classifier on a language model's trunk: the LM's weights (copied) and a fresh head (cls.w seeded, cls.b zero), for
 * fine-tuning a pre-trained checkpoint for a label. `config` is the classifier's (its numLabels, optional padId); it
 * must have the LM's architecture otherwise, and no adapters yet (addLora adds them to the result).
 */
export function withClassifierHead(
  lm: Model,
  config: ModelConfig,
  { seed = 0 }: { seed?: number } = {},
): Model {
  if (lm.config.kind !== 'lm')
    throw new ModelError('E_MODEL_KIND', 'withClassifierHead needs a language model to put a head on');
  if (lm.config.lora !== undefined || config.lora !== undefined)
    throw new ModelError('E_LORA_PRESENT', 'put the head on before the LoRA adapters');
  if (!sameTrunk(lm.config, config))
    throw new ModelError(
      'E_MODEL_CONFIG',
      "the classifier's config must match the language model's architecture apart from kind, numLabels and padId",
    );
  const model = createModel(validateConfig({ ...config, kind: 'classifier' }), { seed });
  for (const [name, v] of lm.params) param(model, name).assign(v);
  return model;
}

/** Whether two configs describe the same trunk (everything but kind, numLabels, padId and the adapters). */
export function sameTrunk(a: ModelConfig, b: ModelConfig): boolean {
  const trunkOf = ({ kind: _k, numLabels: _n, padId: _p, lora: _l, ...rest }: ModelConfig) =>
    JSON.stringify(Object.entries(rest).sort(([x], [y]) => (x < y ? -1 : 1)));
  return trunkOf(a) === trunkOf(b);
}
