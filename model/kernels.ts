// fedtune's own kernels for the tfjs wasm backend, compiled from model/kernels.c (wasm SIMD) into model/kernels-wasm.ts
// (`npm run build:kernels`). They are registered as tfjs kernels and run inside the backend's own memory: a GEMM that
// takes transposed operands and a bias (no Transpose kernels, no XNNPACK operator set up per new weights), causal
// attention forward and backward as one kernel each (instead of ~400 small matmuls a step), GELU, layer norm,
// softmax cross-entropy and the embedding. The ops below wrap them with their gradients (tf.customGrad); gpt.ts and
// train.ts use them on wasm unless `fused: false` asks for plain tf ops. docs/model.md, "fedtune's own kernels".
import * as tf from '@tensorflow/tfjs';
import { ModelError } from './errors.ts';
import { KERNELS_WASM } from './kernels-wasm.ts';

interface WasmModuleLike {
  asm: { memory: WebAssembly.Memory };
  _malloc(bytes: number): number;
  _free(ptr: number): void;
}
interface WasmBackendLike {
  wasm: WasmModuleLike;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  getMemoryOffset(dataId: object): number;
}

type Fn = (...args: number[]) => void;
interface KernelExports {
  gemm: Fn;
  attn_fwd: Fn;
  attn_bwd: Fn;
  gelu_fwd: Fn;
  gelu_bwd: Fn;
  col_sum: Fn;
  layernorm_fwd: Fn;
  layernorm_bwd: Fn;
  softmax_rows: Fn;
  xent_bwd: Fn;
  embed_fwd: Fn;
  embed_bwd: Fn;
  prox_sumsq: (...args: number[]) => number;
  adamw_step: Fn;
  sgd_step: Fn;
}

/** The kernels' instance for one backend's memory, and a scratch buffer in that memory that grows as needed. */
class Kernels {
  readonly fns: KernelExports;
  private scratch = 0;
  private scratchBytes = 0;

  constructor(private readonly backend: WasmBackendLike) {
    const module = new WebAssembly.Module(kernelBytes());
    const instance = new WebAssembly.Instance(module, { env: { memory: backend.wasm.asm.memory } });
    this.fns = instance.exports as unknown as KernelExports;
  }

  /** A scratch region of at least `floats` floats (reused; valid until the next call). */
  scratchFloats(floats: number): number {
    const bytes = floats * 4;
    if (bytes > this.scratchBytes) {
      if (this.scratch !== 0) this.backend.wasm._free(this.scratch);
      this.scratchBytes = Math.max(bytes, 2 * this.scratchBytes);
      this.scratch = this.backend.wasm._malloc(this.scratchBytes) >>> 0;
    }
    return this.scratch;
  }

  ptr(t: tf.TensorInfo): number {
    return this.backend.getMemoryOffset(t.dataId) >>> 0;
  }
}

let bytes: Buffer<ArrayBuffer> | undefined;
const kernelBytes = () => (bytes ??= Buffer.from(KERNELS_WASM, 'base64'));

/** Part of the wasm backend's flavour (backend.ts): a change to kernels.c that changes any result bumps it. */
export const KERNELS_VERSION = 1;

const instances = new WeakMap<object, Kernels>();
function kernelsOf(backend: WasmBackendLike): Kernels {
  let k = instances.get(backend);
  if (k === undefined) {
    k = new Kernels(backend);
    instances.set(backend, k);
  }
  return k;
}

type Inputs = Record<string, tf.TensorInfo>;
type Attrs = Record<string, number>;
type Impl = (
  k: Kernels,
  inputs: Inputs,
  attrs: Attrs,
  out: (shape: number[], dtype?: tf.DataType) => tf.TensorInfo,
) => tf.TensorInfo | tf.TensorInfo[];

const IMPLS: Record<string, Impl> = {
  FedtuneMatMul: (k, { a, b, bias }, { transposeA, transposeB }, out) => {
    const [ar, ac] = a!.shape as [number, number];
    const [br, bc] = b!.shape as [number, number];
    const [m, kk] = transposeA ? [ac, ar] : [ar, ac];
    const n = transposeB ? br : bc;
    const c = out([m, n]);
    const pack = k.scratchFloats(kk * (Math.ceil(n / 8) * 8));
    k.fns.gemm(
      k.ptr(a!),
      k.ptr(b!),
      bias ? k.ptr(bias) : 0,
      k.ptr(c),
      m,
      n,
      kk,
      transposeA,
      transposeB,
      pack,
    );
    return c;
  },
  FedtuneAttention: (k, { qkv }, { b, t, nh }, out) => {
    const d = qkv!.shape[1]! / 3;
    const hd = d / nh!;
    const o = out([b! * t!, d]);
    const probs = out([b! * nh!, t!, t!]);
    k.fns.attn_fwd(k.ptr(qkv!), k.ptr(o), k.ptr(probs), k.scratchFloats(hd * t!), b, t, nh, hd);
    return [o, probs];
  },
  FedtuneAttentionGrad: (k, { qkv, probs, dy }, { b, t, nh }, out) => {
    const d = qkv!.shape[1]! / 3;
    const hd = d / nh!;
    const dqkv = out([b! * t!, 3 * d]);
    const vt = k.scratchFloats((hd + 1) * t!);
    k.fns.attn_bwd(k.ptr(qkv!), k.ptr(probs!), k.ptr(dy!), k.ptr(dqkv), vt, vt + hd * t! * 4, b, t, nh, hd);
    return dqkv;
  },
  FedtuneGelu: (k, { u }, _, out) => {
    const y = out(u!.shape);
    k.fns.gelu_fwd(k.ptr(u!), k.ptr(y), size(u!));
    return y;
  },
  FedtuneGeluGrad: (k, { u, dy }, _, out) => {
    const du = out(u!.shape);
    k.fns.gelu_bwd(k.ptr(u!), k.ptr(dy!), k.ptr(du), size(u!));
    return du;
  },
  FedtuneColSum: (k, { x }, _, out) => {
    const [rows, cols] = x!.shape as [number, number];
    const s = out([cols]);
    k.fns.col_sum(k.ptr(x!), k.ptr(s), rows, cols);
    return s;
  },
  FedtuneLayerNorm: (k, { x, g, b }, { eps }, out) => {
    const [n, d] = x!.shape as [number, number];
    const [y, xhat, rstd] = [out([n, d]), out([n, d]), out([n])];
    k.fns.layernorm_fwd(k.ptr(x!), k.ptr(g!), k.ptr(b!), k.ptr(y), k.ptr(xhat), k.ptr(rstd), n, d, eps);
    return [y, xhat, rstd];
  },
  FedtuneLayerNormGrad: (k, { dy, xhat, rstd, g }, _, out) => {
    const [n, d] = dy!.shape as [number, number];
    const [dx, dg, db] = [out([n, d]), out(g!.shape), out(g!.shape)];
    k.fns.layernorm_bwd(
      k.ptr(dy!),
      k.ptr(xhat!),
      k.ptr(rstd!),
      k.ptr(g!),
      k.ptr(dx),
      k.ptr(dg),
      k.ptr(db),
      n,
      d,
    );
    return [dx, dg, db];
  },
  FedtuneSoftmax: (k, { logits }, _, out) => {
    const [n, classes] = logits!.shape as [number, number];
    const p = out([n, classes]);
    k.fns.softmax_rows(k.ptr(logits!), k.ptr(p), n, classes);
    return p;
  },
  FedtuneXentGrad: (k, { probs, targets }, { scale }, out) => {
    const [n, classes] = probs!.shape as [number, number];
    const g = out([n, classes]);
    k.fns.xent_bwd(k.ptr(probs!), k.ptr(targets!), k.ptr(g), n, classes, scale);
    return g;
  },
  FedtuneEmbed: (k, { table, ids }, _, out) => {
    const d = table!.shape[1]!;
    const n = size(ids!);
    const o = out([n, d]);
    k.fns.embed_fwd(k.ptr(table!), k.ptr(ids!), k.ptr(o), n, d);
    return o;
  },
  FedtuneEmbedGrad: (k, { dy, ids }, { vocab }, out) => {
    const [n, d] = dy!.shape as [number, number];
    const g = out([vocab!, d]);
    k.fns.embed_bwd(k.ptr(dy!), k.ptr(ids!), k.ptr(g), n, d, vocab);
    return g;
  },
  FedtuneAdamW: (k, { w, g, anchor, m, s }, { lr, b1, b2, eps, c1, c2, decay, scale, mu }, out) => {
    const [w2, m2, s2] = [out(w!.shape), out(w!.shape), out(w!.shape)];
    k.fns.adamw_step(
      ...[w, g, anchor, m, s, w2, m2, s2].map((t) => k.ptr(t!)),
      size(w!),
      ...[lr, b1, b2, eps, c1, c2, decay, scale, mu].map((x) => x!),
    );
    return [w2, m2, s2];
  },
  FedtuneSgd: (k, { w, g, anchor, buf }, { first, lr, momentum, decay, scale, mu }, out) => {
    const [w2, buf2] = [out(w!.shape), out(w!.shape)];
    k.fns.sgd_step(
      ...[w, g, anchor, buf, w2, buf2].map((t) => k.ptr(t!)),
      size(w!),
      ...[first, lr, momentum, decay, scale, mu].map((x) => x!),
    );
    return [w2, buf2];
  },
};

const size = (t: tf.TensorInfo) => t.shape.reduce((a, b) => a * b, 1);

/** Σ (g + mu·(w − anchor))² over a gradient's elements, in double (the optimiser's global norm; heap-optim.ts). */
export function proxSumSquares(g: tf.Tensor, w: tf.Tensor, anchor: tf.Tensor, mu: number): number {
  const k = kernelsOf(tf.backend() as unknown as WasmBackendLike);
  return k.fns.prox_sumsq(k.ptr(g), k.ptr(w), k.ptr(anchor), mu, g.size);
}

/** One AdamW step of a tensor: [w', m', s'] (heap-optim.ts has the arithmetic's contract). */
export function adamwStep(
  tensors: { w: tf.Tensor; g: tf.Tensor; anchor: tf.Tensor; m: tf.Tensor; s: tf.Tensor },
  attrs: {
    lr: number;
    b1: number;
    b2: number;
    eps: number;
    c1: number;
    c2: number;
    decay: number;
    scale: number;
    mu: number;
  },
): [tf.Tensor, tf.Tensor, tf.Tensor] {
  return run<[tf.Tensor, tf.Tensor, tf.Tensor]>('FedtuneAdamW', tensors, attrs);
}

/** One SGD-with-momentum step of a tensor: [w', buf']. */
export function sgdStep(
  tensors: { w: tf.Tensor; g: tf.Tensor; anchor: tf.Tensor; buf: tf.Tensor },
  attrs: { first: number; lr: number; momentum: number; decay: number; scale: number; mu: number },
): [tf.Tensor, tf.Tensor] {
  return run<[tf.Tensor, tf.Tensor]>('FedtuneSgd', tensors, attrs);
}

let registered = false;

/** Registers the kernels with the wasm backend (idempotent). */
export function registerFedtuneKernels(): void {
  if (registered) return;
  // The kernels need wasm SIMD; without it the wasm backend runs with its own kernels only.
  if (!WebAssembly.validate(kernelBytes())) return;
  for (const [kernelName, impl] of Object.entries(IMPLS)) {
    tf.registerKernel({
      kernelName,
      backendName: 'wasm',
      kernelFunc: (({ inputs, attrs, backend }: { inputs: Inputs; attrs: Attrs; backend: WasmBackendLike }) =>
        impl(kernelsOf(backend), inputs, attrs, (shape, dtype = 'float32') =>
          backend.makeOutput(shape, dtype),
        )) as unknown as tf.KernelFunc,
    });
  }
  registered = true;
}

/** Whether fedtune's kernels serve the active backend (wasm, once registered). */
export function kernelsActive(): boolean {
  return registered && tf.getBackend() === 'wasm';
}

const run = <T extends tf.Tensor | tf.Tensor[]>(
  name: string,
  inputs: Record<string, tf.Tensor>,
  attrs: Attrs = {},
) => tf.engine().runKernel(name, inputs as tf.NamedTensorMap, attrs as tf.NamedAttrMap) as unknown as T;

/** Whether FedtuneMatMul takes these operands: 2-D, m % 4 == 0, n % 4 == 0, on the wasm backend. */
export function gemmFits(m: number, n: number): boolean {
  return kernelsActive() && m % 4 === 0 && n % 4 === 0 && m > 0 && n > 0;
}

/** op(a) @ op(b) (+ bias) through FedtuneMatMul, no gradient of its own (see ops.ts' matMul2d, linearFused). */
export function gemm(
  a: tf.Tensor2D,
  b: tf.Tensor2D,
  transposeA = false,
  transposeB = false,
  bias?: tf.Tensor,
): tf.Tensor2D {
  // The kernels index the backend's heap directly: shapes are checked here, where a mismatch is an error, not a stray read.
  const k = transposeA ? a.shape[0] : a.shape[1];
  const kb = transposeB ? b.shape[1] : b.shape[0];
  const n = transposeB ? b.shape[0] : b.shape[1];
  if (
    k !== kb ||
    (bias !== undefined && bias.size !== n) ||
    !gemmFits(transposeA ? a.shape[1] : a.shape[0], n)
  ) {
    throw new ModelError(
      'E_MODEL_INPUT',
      `FedtuneMatMul cannot take [${a.shape}]${transposeA ? 'ᵀ' : ''} @ [${b.shape}]${transposeB ? 'ᵀ' : ''}`,
    );
  }
  return run<tf.Tensor2D>('FedtuneMatMul', bias ? { a, b, bias } : { a, b }, {
    transposeA: +transposeA,
    transposeB: +transposeB,
  });
}

/** Whether the attention kernels take this layout: the wasm backend and a head size that is a multiple of 4. */
export function attentionFits(d: number, nh: number): boolean {
  return kernelsActive() && d % nh === 0 && (d / nh) % 4 === 0;
}

/** Causal self-attention, qkv [b·t, 3d] → [b·t, d], as two kernels (forward, backward). */
export function fusedAttention(qkv: tf.Tensor2D, b: number, t: number, nh: number): tf.Tensor2D {
  if (qkv.shape[0] !== b * t || qkv.shape[1] % 3 !== 0 || !attentionFits(qkv.shape[1] / 3, nh)) {
    throw new ModelError(
      'E_MODEL_INPUT',
      `fused attention cannot take qkv [${qkv.shape}] as ${b} × ${t} tokens, ${nh} heads`,
    );
  }
  const f = tf.customGrad((x, save) => {
    const [out, probs] = run<[tf.Tensor2D, tf.Tensor3D]>(
      'FedtuneAttention',
      { qkv: x as tf.Tensor },
      { b, t, nh },
    );
    (save as tf.GradSaveFunc)([x as tf.Tensor, probs]);
    return {
      value: out,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        run<tf.Tensor>('FedtuneAttentionGrad', { qkv: saved[0]!, probs: saved[1]!, dy }, { b, t, nh }),
    };
  });
  return f(qkv) as tf.Tensor2D;
}

/** Whether linearFused takes x[n, in] @ w[in, out]. */
export function linearFits(n: number, din: number, dout: number): boolean {
  return gemmFits(n, dout) && din % 4 === 0;
}

/** x @ w + bias, then GELU if asked, as one GEMM (+ one GELU kernel); the gradient is three GEMMs' worth of kernels. */
export function linearFused(x: tf.Tensor2D, w: tf.Tensor2D, bias: tf.Tensor, gelu: boolean): tf.Tensor2D {
  const f = tf.customGrad((xi, wi, bi, save) => {
    const u = gemm(xi as tf.Tensor2D, wi as tf.Tensor2D, false, false, bi as tf.Tensor);
    (save as tf.GradSaveFunc)([xi as tf.Tensor, wi as tf.Tensor, u]);
    return {
      value: gelu ? run<tf.Tensor2D>('FedtuneGelu', { u }) : u,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sw, su] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
        const du = gelu ? run<tf.Tensor2D>('FedtuneGeluGrad', { u: su, dy }) : (dy as tf.Tensor2D);
        return [
          gemm(du, sw, false, true),
          gemm(sx, du, true, false),
          run<tf.Tensor>('FedtuneColSum', { x: du }),
        ];
      },
    };
  });
  return f(x, w, bias) as tf.Tensor2D;
}

/** Layer norm over the last axis of x[n, d] as one kernel forward and one backward. */
export function layerNormFused(x: tf.Tensor2D, g: tf.Tensor, b: tf.Tensor, eps = 1e-5): tf.Tensor2D {
  const f = tf.customGrad((xi, gi, bi, save) => {
    const [y, xhat, rstd] = run<tf.Tensor[]>(
      'FedtuneLayerNorm',
      { x: xi as tf.Tensor, g: gi as tf.Tensor, b: bi as tf.Tensor },
      { eps },
    );
    (save as tf.GradSaveFunc)([xhat!, rstd!, gi as tf.Tensor]);
    return {
      value: y!,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xhatS, rstdS, gS] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
        return run<tf.Tensor[]>('FedtuneLayerNormGrad', { dy, xhat: xhatS, rstd: rstdS, g: gS });
      },
    };
  });
  return f(x, g, b) as tf.Tensor2D;
}

/** Softmax over the rows of logits [n, classes] (cross-entropy's forward: train.ts' crossEntropy). */
export function softmaxRows(logits: tf.Tensor2D): tf.Tensor2D {
  return run<tf.Tensor2D>('FedtuneSoftmax', { logits });
}

/** Cross-entropy's gradient from its softmax: (probs − onehot(targets))·scale. targets: checked by the caller. */
export function xentGrad(probs: tf.Tensor2D, targets: Int32Array, scale: number): tf.Tensor2D {
  return run<tf.Tensor2D>('FedtuneXentGrad', { probs, targets: tf.tensor1d(targets, 'int32') }, { scale });
}

/** table[ids] as one kernel; its gradient a scatter-add kernel. */
export function embeddingFused(table: tf.Tensor2D, ids: Int32Array): tf.Tensor2D {
  const vocab = table.shape[0];
  checkIndices(ids, ids.length, vocab, 'ids');
  // The ids go in as a fresh tensor each time: one made in the forward is disposed before the gradient runs.
  const f = tf.customGrad((t) => ({
    value: run<tf.Tensor2D>('FedtuneEmbed', { table: t as tf.Tensor, ids: tf.tensor1d(ids, 'int32') }),
    gradFunc: (dy: tf.Tensor) =>
      run<tf.Tensor>('FedtuneEmbedGrad', { dy, ids: tf.tensor1d(ids, 'int32') }, { vocab }),
  }));
  return f(table) as tf.Tensor2D;
}

/** n indices, each in [0, bound): a kernel reads and writes the rows they name. */
export function checkIndices(xs: Int32Array, n: number, bound: number, what: string): void {
  if (xs.length !== n) throw new ModelError('E_MODEL_INPUT', `expected ${n} ${what}, got ${xs.length}`);
  for (let i = 0; i < n; i++) {
    if (!(xs[i]! >= 0 && xs[i]! < bound)) {
      throw new ModelError('E_MODEL_INPUT', `${what}[${i}] = ${xs[i]} is outside 0..${bound - 1}`);
    }
  }
}
