// The GPT-style decoder-only transformer: parameters in a fixed, named order, and the forward pass.
import * as tf from '@tensorflow/tfjs';
import { LORA_TARGETS, validateConfig, type ModelConfig } from './config.ts';
import { ModelError } from './errors.ts';
import {
  causalAttention,
  defaultAttention,
  embedding,
  gelu,
  layerNorm,
  matMul2d,
  matMul2dNT,
  type AttentionOptions,
} from './ops.ts';
import { layerNormHost } from './fused.ts';
import { kernelsActive, layerNormFused, linearFits, linearFused } from './kernels.ts';
import { createRng, type Rng } from './rng.ts';

export interface Model {
  config: ModelConfig;
  /** Every parameter, in the canonical order (see paramSpecs). */
  params: Map<string, tf.Variable>;
}

type Init = 'normal' | 'proj' | 'lora_a' | 'zeros' | 'ones';

export interface ParamSpec {
  name: string;
  shape: number[];
  init: Init;
}

/**
 * The canonical parameter list (GPT-2 names; a linear layer's weight is [in, out]):
 * wte, wpe, then per block h.i.{ln_1.g, ln_1.b, attn.c_attn.w, attn.c_attn.b, attn.c_proj.w, attn.c_proj.b,
 * ln_2.g, ln_2.b, mlp.c_fc.w, mlp.c_fc.b, mlp.c_proj.w, mlp.c_proj.b}, ln_f.g, ln_f.b, the classifier's cls.w, cls.b,
 * then the LoRA adapters h.i.<target>.lora_a [in, rank], .lora_b [rank, out], block by block, targets in LORA_TARGETS order.
 */
export function paramSpecs(config: ModelConfig): ParamSpec[] {
  const { vocabSize: v, context, dModel: d, dMlp: m, nLayer } = config;
  const specs: ParamSpec[] = [
    { name: 'wte', shape: [v, d], init: 'normal' },
    { name: 'wpe', shape: [context, d], init: 'normal' },
  ];
  for (let i = 0; i < nLayer; i++) {
    const p = `h.${i}.`;
    specs.push(
      { name: `${p}ln_1.g`, shape: [d], init: 'ones' },
      { name: `${p}ln_1.b`, shape: [d], init: 'zeros' },
      { name: `${p}attn.c_attn.w`, shape: [d, 3 * d], init: 'normal' },
      { name: `${p}attn.c_attn.b`, shape: [3 * d], init: 'zeros' },
      { name: `${p}attn.c_proj.w`, shape: [d, d], init: 'proj' },
      { name: `${p}attn.c_proj.b`, shape: [d], init: 'zeros' },
      { name: `${p}ln_2.g`, shape: [d], init: 'ones' },
      { name: `${p}ln_2.b`, shape: [d], init: 'zeros' },
      { name: `${p}mlp.c_fc.w`, shape: [d, m], init: 'normal' },
      { name: `${p}mlp.c_fc.b`, shape: [m], init: 'zeros' },
      { name: `${p}mlp.c_proj.w`, shape: [m, d], init: 'proj' },
      { name: `${p}mlp.c_proj.b`, shape: [d], init: 'zeros' },
    );
  }
  specs.push({ name: 'ln_f.g', shape: [d], init: 'ones' }, { name: 'ln_f.b', shape: [d], init: 'zeros' });
  if (config.kind === 'classifier') {
    specs.push(
      { name: 'cls.w', shape: [d, config.numLabels ?? 2], init: 'normal' },
      { name: 'cls.b', shape: [config.numLabels ?? 2], init: 'zeros' },
    );
  }
  if (config.lora !== undefined) {
    const dims: Record<string, [number, number]> = {
      'attn.c_attn': [d, 3 * d],
      'attn.c_proj': [d, d],
      'mlp.c_fc': [d, m],
      'mlp.c_proj': [m, d],
    };
    for (let i = 0; i < nLayer; i++) {
      for (const target of LORA_TARGETS) {
        if (!config.lora.targets.includes(target)) continue;
        const [din, dout] = dims[target]!;
        specs.push(
          { name: `h.${i}.${target}.lora_a`, shape: [din, config.lora.rank], init: 'lora_a' },
          { name: `h.${i}.${target}.lora_b`, shape: [config.lora.rank, dout], init: 'zeros' },
        );
      }
    }
  }
  return specs;
}

export function isLoraParam(name: string): boolean {
  return name.endsWith('.lora_a') || name.endsWith('.lora_b');
}

/** Whether a parameter trains: all do, or with LoRA only the adapters (B alone under freezeA) and a classifier's new head. */
function trains(config: ModelConfig, name: string): boolean {
  if (config.lora === undefined || name.startsWith('cls.') || name.endsWith('.lora_b')) return true;
  return name.endsWith('.lora_a') && config.lora.freezeA !== true;
}

/** The parameters that train, in the canonical order: what an update carries and a strategy aggregates. */
export function trainableNames(model: Model): string[] {
  return [...model.params.keys()].filter((n) => trains(model.config, n));
}

function initValues(spec: ParamSpec, config: ModelConfig, rng: Rng): Float32Array {
  const size = spec.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(size);
  if (spec.init === 'ones') out.fill(1);
  if (spec.init === 'normal' || spec.init === 'proj' || spec.init === 'lora_a') {
    // GPT-2: std 0.02, residual projections scaled by 1/sqrt(2 layers); LoRA A like a fan-in init, B zero.
    const std =
      spec.init === 'normal'
        ? 0.02
        : spec.init === 'proj'
          ? 0.02 / Math.sqrt(2 * config.nLayer)
          : 1 / Math.sqrt(spec.shape[0]!);
    for (let i = 0; i < size; i++) out[i] = rng.normal() * std;
  }
  return out;
}

/** A freshly initialised model; the same config and seed give the same weights on every backend. */
export function createModel(config: ModelConfig, { seed = 0 }: { seed?: number } = {}): Model {
  validateConfig(config);
  const rng = createRng(seed);
  const params = new Map<string, tf.Variable>();
  for (const spec of paramSpecs(config)) {
    const initial = tf.tensor(initValues(spec, config, rng), spec.shape);
    params.set(spec.name, tf.variable(initial, true));
    initial.dispose();
  }
  return { config, params };
}

export function disposeModel(model: Model): void {
  for (const v of model.params.values()) v.dispose();
  model.params.clear();
}

export function param(model: Model, name: string): tf.Variable {
  const v = model.params.get(name);
  if (v === undefined) throw new ModelError('E_MODEL_PARAM', `the model has no parameter "${name}"`);
  return v;
}

export function countParams(config: ModelConfig, { trainableOnly = false } = {}): number {
  return paramSpecs(config)
    .filter((s) => !trainableOnly || trains(config, s.name))
    .reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
}

export interface ForwardOptions {
  /** Dropout on; needs rng for its seeds. */
  training?: boolean;
  rng?: Rng;
  attention?: AttentionOptions;
  /**
   * The fast ops: on wasm fedtune's kernels (kernels.ts: linear layers, layer norm, embedding, cross-entropy), on cpu
   * layer norm as one JS op over host copies (fused.ts). Default: on every backend but tensorflow; false: plain tf ops,
   * the reference the tests compare them with.
   */
  fused?: boolean;
}

function dropout(x: tf.Tensor2D, config: ModelConfig, options: ForwardOptions): tf.Tensor2D {
  if (!options.training || config.dropout === 0) return x;
  const seed = options.rng ? options.rng.int(2 ** 31) : undefined;
  return tf.dropout(x, config.dropout, undefined, seed) as tf.Tensor2D;
}

/**
 * Plain tf ops on wasm with fedtune's kernels turned off (`fused: false`, the tests' reference); elsewhere matMul2d
 * (the GEMM kernel where it fits on wasm, explicit transposes in the gradient otherwise) whatever `fused` says, as
 * before the kernels, so the cpu and tensorflow backends' arithmetic is unchanged.
 */
const plainOnWasm = (fused: boolean) => !fused && kernelsActive();

/**
 * x[n, in] @ w + b, plus the LoRA adapter's (alpha/rank) · x @ A @ B where one sits on this projection; with `gelu_`,
 * GELU of that. `fused`: fedtune's linear kernel where it fits (wasm).
 */
function linear(model: Model, prefix: string, x: tf.Tensor2D, fused: boolean, gelu_ = false): tf.Tensor2D {
  const w = param(model, `${prefix}.w`) as tf.Tensor2D;
  const bias = param(model, `${prefix}.b`);
  const a = model.params.get(`${prefix}.lora_a`);
  const lora = model.config.lora;
  if (fused && a === undefined && linearFits(x.shape[0], w.shape[0], w.shape[1]))
    return linearFused(x, w, bias, gelu_);
  const mul = plainOnWasm(fused)
    ? (p: tf.Tensor2D, q: tf.Tensor2D) => tf.matMul(p, q) as tf.Tensor2D
    : matMul2d;
  let y = mul(x, w);
  if (a !== undefined && lora !== undefined) {
    const low = mul(x, a as tf.Tensor2D); // [n, rank]
    y = tf.add(y, tf.mul(mul(low, param(model, `${prefix}.lora_b`) as tf.Tensor2D), lora.alpha / lora.rank));
  }
  y = tf.add(y, bias) as tf.Tensor2D;
  return gelu_ ? (gelu(y) as tf.Tensor2D) : y;
}

/**
 * The transformer trunk. ids: b sequences of t tokens, row-major (t ≤ context). Returns the final-norm hidden states
 * [b*t, dModel]. Call inside tf.tidy.
 */
export function trunk(
  model: Model,
  ids: Int32Array,
  b: number,
  t: number,
  options: ForwardOptions = {},
): tf.Tensor2D {
  const { config } = model;
  const d = config.dModel;
  if (ids.length !== b * t || t > config.context || t < 1) {
    throw new ModelError(
      'E_MODEL_INPUT',
      `expected ${b} sequences of 1..${config.context} tokens, got ${ids.length} ids for t=${t}`,
    );
  }
  const attention = options.attention ?? defaultAttention(d, config.nHead);
  const fused = options.fused ?? tf.getBackend() !== 'tensorflow';
  const ln = !fused ? layerNorm : kernelsActive() ? layerNormFused : layerNormHost;
  const norm = (x: tf.Tensor2D, name: string) => ln(x, param(model, `${name}.g`), param(model, `${name}.b`));
  const wpe = param(model, 'wpe');
  const pos = t === config.context ? wpe : tf.slice(wpe, [0, 0], [t, d]);
  const tok = tf.reshape(embedding(param(model, 'wte') as tf.Tensor2D, ids, fused), [b, t, d]);
  let x = dropout(tf.reshape(tf.add(tok, pos), [b * t, d]), config, options); // [b*t, d]
  for (let i = 0; i < config.nLayer; i++) {
    const p = `h.${i}.`;
    const qkv = linear(model, `${p}attn.c_attn`, norm(x, `${p}ln_1`), fused); // [b*t, 3d]
    const att = linear(model, `${p}attn.c_proj`, causalAttention(qkv, b, t, config.nHead, attention), fused);
    x = tf.add(x, dropout(att, config, options));
    const hidden = linear(model, `${p}mlp.c_fc`, norm(x, `${p}ln_2`), fused, true); // [b*t, dMlp]
    x = tf.add(x, dropout(linear(model, `${p}mlp.c_proj`, hidden, fused), config, options));
  }
  return norm(x, 'ln_f');
}

/** Next-token logits through the tied output embedding: hidden[n, d] → [n, vocab]. fused: see ForwardOptions. */
export function lmHead(model: Model, hidden: tf.Tensor2D, fused = true): tf.Tensor2D {
  const wte = param(model, 'wte') as tf.Tensor2D;
  if (kernelsActive()) return fused ? matMul2dNT(hidden, wte) : tf.matMul(hidden, wte, false, true);
  return matMul2d(hidden, tf.transpose(wte));
}
