// Generation: temperature and top-k sampling from a prompt, one token at a time over the last `context` tokens.
import * as tf from '@tensorflow/tfjs';
import { ModelError } from './errors.ts';
import { lmHead, trunk, type Model } from './gpt.ts';
import { createRng } from './rng.ts';

export interface GenerateOptions {
  maxTokens: number;
  /** 0 picks the most likely token; default 1. */
  temperature?: number;
  /** Sample among the k most likely tokens; 0 or absent: all. */
  topK?: number;
  seed?: number;
  /** Stop after emitting this token (e.g. EOS = 257). */
  stopToken?: number;
}

/** The sampled continuation of promptIds (the prompt itself not included). */
export function generate(model: Model, promptIds: ArrayLike<number>, options: GenerateOptions): Int32Array {
  const { maxTokens, temperature = 1, topK = 0, seed = 0, stopToken } = options;
  const { kind, context, vocabSize } = model.config;
  if (kind !== 'lm') throw new ModelError('E_MODEL_KIND', 'generate needs an LM');
  if (promptIds.length === 0)
    throw new ModelError('E_MODEL_INPUT', 'the prompt needs at least one token (BOS = 256 will do)');
  if (!(temperature >= 0))
    throw new ModelError('E_GENERATE_OPTIONS', `temperature must be >= 0, got ${temperature}`);
  const rng = createRng(seed);
  const tokens = Array.from(promptIds);
  const out: number[] = [];
  for (let i = 0; i < maxTokens; i++) {
    const window = Int32Array.from(tokens.slice(-context));
    const t = window.length;
    const logitsT = tf.tidy(() => {
      const hidden = trunk(model, window, 1, t);
      return lmHead(model, tf.slice(hidden, [t - 1, 0], [1, -1]));
    });
    const logits = logitsT.dataSync() as Float32Array;
    logitsT.dispose();
    const next = sample(logits.subarray(0, vocabSize), temperature, topK, rng.next());
    out.push(next);
    tokens.push(next);
    if (next === stopToken) break;
  }
  return Int32Array.from(out);
}

/** Picks a token from logits: greedy at temperature 0, else softmax(logits/T) over the top k, with u in [0,1). */
export function sample(logits: Float32Array, temperature: number, topK: number, u: number): number {
  const idx = Array.from(logits.keys());
  if (temperature === 0) return idx.reduce((best, i) => (logits[i]! > logits[best]! ? i : best), 0);
  idx.sort((a, b) => logits[b]! - logits[a]! || a - b);
  const keep = topK > 0 ? idx.slice(0, topK) : idx;
  const max = logits[keep[0]!]!;
  const weights = keep.map((i) => Math.exp((logits[i]! - max) / temperature));
  let r = u * weights.reduce((a, b) => a + b, 0);
  for (let j = 0; j < keep.length; j++) {
    r -= weights[j]!;
    if (r < 0) return keep[j]!;
  }
  return keep[keep.length - 1]!;
}
