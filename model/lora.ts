// LoRA: low-rank adapters on chosen projections of a frozen base, and merging them into the base for release.
import * as tf from '@tensorflow/tfjs';
import { validateConfig, type LoraConfig } from './config.ts';
import { ModelError } from './errors.ts';
import { createModel, param, trainableNames, type Model } from './gpt.ts';

/**
 * A new model with the base's weights (copied) and fresh adapters (A random, B zero, so its outputs start equal to
 * the base's). Only the adapters (B alone with `freezeA`) and a classifier's head train.
 */
export function addLora(base: Model, lora: LoraConfig, { seed = 0 }: { seed?: number } = {}): Model {
  if (base.config.lora !== undefined)
    throw new ModelError('E_LORA_PRESENT', 'the model already has LoRA adapters');
  const config = validateConfig({ ...base.config, lora: { ...lora, targets: [...lora.targets] } });
  const model = createModel(config, { seed });
  for (const [name, v] of base.params) param(model, name).assign(v);
  return model;
}

/** A plain model whose projections are w + (alpha/rank)·A@B: the same outputs, no adapters. */
export function mergeLora(model: Model): Model {
  const lora = model.config.lora;
  if (lora === undefined) throw new ModelError('E_LORA_ABSENT', 'the model has no LoRA adapters to merge');
  const { lora: _dropped, ...rest } = model.config;
  const merged = createModel(rest);
  for (const [name, v] of merged.params) {
    const src = param(model, name);
    const a = name.endsWith('.w') ? model.params.get(name.replace(/\.w$/, '.lora_a')) : undefined;
    if (a === undefined) {
      v.assign(src);
      continue;
    }
    const b = param(model, name.replace(/\.w$/, '.lora_b'));
    tf.tidy(() => v.assign(tf.add(src, tf.mul(tf.matMul(a, b), lora.alpha / lora.rank))));
  }
  return merged;
}

/** The names of a LoRA model's weights that stay frozen: the base's, and the adapters' A under freezeA. */
export function frozenNames(model: Model): string[] {
  const trainable = new Set(trainableNames(model));
  return [...model.params.keys()].filter((n) => !trainable.has(n));
}
