// Weights as an ordered list of named Float32Arrays: what updates, aggregators and checkpoint files exchange.
import * as tf from '@tensorflow/tfjs';
import { ModelError } from './errors.ts';
import type { Model } from './gpt.ts';
import { trainableNames } from './gpt.ts';

export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}
/** In the model's canonical parameter order (see paramSpecs). */
export type NamedTensors = NamedTensor[];

export interface GetWeightsOptions {
  /** Only these names (kept in canonical order); default all. */
  names?: readonly string[];
  /** Only the parameters that train (LoRA: the adapters and a classifier's head). */
  trainableOnly?: boolean;
}

/** A copy of the model's weights. */
export function getWeights(
  model: Model,
  { names, trainableOnly = false }: GetWeightsOptions = {},
): NamedTensors {
  const wanted = new Set(names ?? (trainableOnly ? trainableNames(model) : model.params.keys()));
  const out: NamedTensors = [];
  for (const [name, v] of model.params) {
    if (!wanted.has(name)) continue;
    out.push({ name, shape: [...v.shape], data: new Float32Array(v.dataSync() as Float32Array) });
  }
  return out;
}

export interface SetWeightsOptions {
  /** Allow a subset of the parameters (an adapter-only or head-only list); default every parameter must be there. */
  partial?: boolean;
}

/** Loads weights into the model after checking every name, shape and length, so a bad list changes nothing. */
export function setWeights(
  model: Model,
  weights: NamedTensors,
  { partial = false }: SetWeightsOptions = {},
): void {
  const seen = new Set<string>();
  for (const w of weights) {
    const v = model.params.get(w.name);
    if (v === undefined) throw new ModelError('E_WEIGHTS_UNKNOWN', `the model has no parameter "${w.name}"`);
    if (seen.has(w.name)) throw new ModelError('E_WEIGHTS_DUPLICATE', `parameter "${w.name}" appears twice`);
    seen.add(w.name);
    const size = v.shape.reduce((a, b) => a * b, 1);
    if (w.shape.length !== v.shape.length || w.shape.some((s, i) => s !== v.shape[i])) {
      throw new ModelError(
        'E_WEIGHTS_SHAPE',
        `parameter "${w.name}" has shape [${w.shape}], expected [${v.shape}]`,
      );
    }
    if (!(w.data instanceof Float32Array) || w.data.length !== size) {
      throw new ModelError(
        'E_WEIGHTS_SHAPE',
        `parameter "${w.name}" has ${w.data.length} values, expected a Float32Array of ${size}`,
      );
    }
  }
  if (!partial) {
    const missing = [...model.params.keys()].filter((n) => !seen.has(n));
    if (missing.length > 0) {
      throw new ModelError(
        'E_WEIGHTS_MISSING',
        `missing ${missing.length} parameter(s): ${missing.slice(0, 5).join(', ')}`,
      );
    }
  }
  for (const w of weights) {
    const v = model.params.get(w.name)!;
    tf.tidy(() => v.assign(tf.tensor(w.data, v.shape)));
  }
}

/** a - b, name by name (same names and shapes): the update a worker sends. */
export function subtractWeights(a: NamedTensors, b: NamedTensors): NamedTensors {
  return a.map((t, i) => {
    const o = b[i];
    if (o === undefined || o.name !== t.name || o.data.length !== t.data.length) {
      throw new ModelError('E_WEIGHTS_MISMATCH', `weight lists differ at ${i} ("${t.name}")`);
    }
    const data = new Float32Array(t.data.length);
    for (let j = 0; j < data.length; j++) data[j] = t.data[j]! - o.data[j]!;
    return { name: t.name, shape: [...t.shape], data };
  });
}
