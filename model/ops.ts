// The few ops the model is built from, shaped for the wasm backend: 2-D matmuls (fedtune's GEMM kernel where the
// shapes fit, explicit transposes for XNNPACK otherwise), the embedding, layer norm, GELU, and attention (fedtune's
// kernel, or 2-D blocks).
import * as tf from '@tensorflow/tfjs';
import { ModelError } from './errors.ts';
import { blockAttention, causalMask } from './attention.ts';
import { attentionFits, embeddingFused, fusedAttention, gemm, gemmFits, kernelsActive } from './kernels.ts';

/** op(a) @ op(b) for 2-D a and b: fedtune's GEMM kernel on wasm where the shapes fit it, else tf.matMul. */
function mm(a: tf.Tensor2D, b: tf.Tensor2D, ta: boolean, tb: boolean): tf.Tensor2D {
  const m = ta ? a.shape[1] : a.shape[0];
  const n = tb ? b.shape[0] : b.shape[1];
  if (gemmFits(m, n)) return gemm(a, b, ta, tb);
  // The wasm backend hands a matmul to XNNPACK only when it is 2-D without transpose flags (flags: ~10x slower there).
  return tf.matMul(ta ? tf.transpose(a) : a, tb ? tf.transpose(b) : b);
}

/** a @ b, or a @ bᵀ with tb, whose gradient is plain 2-D matmuls too (mm). */
function matMulOp(tb: boolean) {
  return tf.customGrad((a, b, save) => {
    const x = a as tf.Tensor2D;
    const w = b as tf.Tensor2D;
    (save as tf.GradSaveFunc)([x, w]);
    return {
      value: mm(x, w, false, tb),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sw] = saved as [tf.Tensor2D, tf.Tensor2D];
        const g = dy as tf.Tensor2D;
        return tb
          ? [mm(g, sw, false, false), mm(g, sx, true, false)]
          : [mm(g, sw, false, true), mm(sx, g, true, false)];
      },
    };
  }) as (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;
}

/** a[m,k] @ b[k,n]. */
export const matMul2d = matMulOp(false);

/** a[m,k] @ b[n,k]ᵀ (the tied output embedding). */
export const matMul2dNT = matMulOp(true);

/**
 * table[ids]: [n, d]. The forward is a gather; the gradient is a scatter-add of dy's rows done in JS on wasm and cpu,
 * because gather's gradient (UnsortedSegmentSum) has no wasm kernel (a one-hot matmul was the old way round, and slower).
 */
export function embedding(table: tf.Tensor2D, ids: Int32Array, fused = true): tf.Tensor2D {
  if (fused && kernelsActive()) return embeddingFused(table, ids);
  const idsT = tf.tensor1d(ids, 'int32');
  if (tf.getBackend() === 'tensorflow') return tf.gather(table, idsT);
  const [vocab, d] = table.shape;
  const f = tf.customGrad((t) => ({
    value: tf.gather(t as tf.Tensor2D, idsT),
    gradFunc: (dy: tf.Tensor) => {
      const g = dy.dataSync() as Float32Array;
      const out = new Float64Array(vocab * d);
      for (let i = 0; i < ids.length; i++) {
        const row = ids[i]! * d;
        for (let c = 0; c < d; c++) out[row + c] += g[i * d + c]!;
      }
      return tf.tensor2d(Float32Array.from(out), [vocab, d]);
    },
  }));
  return f(table) as tf.Tensor2D;
}

/** Layer norm over the last axis of x[n, d]. */
export function layerNorm(x: tf.Tensor2D, g: tf.Tensor, b: tf.Tensor, eps = 1e-5): tf.Tensor2D {
  const mean = tf.mean(x, -1, true);
  const xc = tf.sub(x, mean);
  const variance = tf.mean(tf.square(xc), -1, true);
  return tf.add(tf.mul(tf.mul(xc, tf.rsqrt(tf.add(variance, eps))), g), b);
}

const GELU_K = Math.sqrt(2 / Math.PI);
const GELU_C = 0.044715;

/**
 * GELU (GPT-2's tanh form) written as x·sigmoid(2u), u = k(x + c·x³), since 0.5(1 + tanh u) = sigmoid(2u): wasm's
 * Sigmoid is an XNNPACK kernel while its Tanh and Pow are ~30x slower. The gradient is hand-written too.
 */
export const gelu = tf.customGrad((x, save) => {
  const xt = x as tf.Tensor;
  const x2 = tf.square(xt);
  const s = tf.sigmoid(tf.mul(tf.mul(xt, tf.add(tf.mul(x2, GELU_C), 1)), 2 * GELU_K));
  (save as tf.GradSaveFunc)([xt, s]);
  return {
    value: tf.mul(xt, s),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sx, ss] = saved as [tf.Tensor, tf.Tensor];
      // d/dx = s + x·s(1-s)·2k(1 + 3c·x²)
      const du = tf.mul(tf.add(tf.mul(tf.square(sx), 3 * GELU_C), 1), 2 * GELU_K);
      const d = tf.add(ss, tf.mul(tf.mul(sx, tf.mul(ss, tf.sub(1, ss))), du));
      return tf.mul(dy, d);
    },
  };
}) as (x: tf.Tensor) => tf.Tensor;

export type AttentionMode = 'batched' | 'blocks' | 'fused';

export interface AttentionOptions {
  /**
   * 'batched': one batched matmul (tensorflow, cpu). 'blocks': 2-D matmuls that reach XNNPACK (wasm). 'fused': one
   * fedtune kernel forward and one backward (wasm, a head size that is a multiple of 4; kernels.ts).
   */
  mode: AttentionMode;
  /** 'blocks' only: about how many rows one 2-D block holds; several (sequence, head) pairs share a block. */
  blockRows: number;
}

/**
 * Causal multi-head self-attention core. qkv: [b*t, 3d] (q | k | v, heads contiguous inside each) → [b*t, d].
 * 'fused' and 'blocks' are one op each with their own gradient (kernels.ts, attention.ts); 'batched' is plain tf ops,
 * the reference.
 */
export function causalAttention(
  qkv: tf.Tensor2D,
  b: number,
  t: number,
  nHead: number,
  options: AttentionOptions,
): tf.Tensor2D {
  if (options.mode === 'fused') {
    if (!attentionFits(qkv.shape[1] / 3, nHead)) {
      throw new ModelError(
        'E_MODEL_INPUT',
        `fused attention needs the wasm backend and a head size that is a multiple of 4`,
      );
    }
    return fusedAttention(qkv, b, t, nHead);
  }
  if (options.mode === 'blocks') return blockAttention(qkv, b, t, nHead, options.blockRows);
  const d = qkv.shape[1] / 3;
  const hd = d / nHead;
  // [b, t, 3h, hd] → [b, 3h, t, hd]: q heads, then k heads, then v heads (only 4-D transposes: wasm's 5-D is slow)
  const heads = tf.transpose(tf.reshape(qkv, [b, t, 3 * nHead, hd]), [0, 2, 1, 3]);
  const [q, k, v] = tf.split(heads, 3, 1) as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
  const scores = tf.add(
    tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(hd)),
    tf.tensor2d(causalMask(1, t), [t, t]),
  );
  const out = tf.matMul(tf.softmax(scores), v); // [b, h, t, hd]
  return tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [b * t, d]);
}

/** The attention layout that suits the active backend, for d model dimensions in nHead heads. */
export function defaultAttention(d: number, nHead: number): AttentionOptions {
  if (attentionFits(d, nHead)) return { mode: 'fused', blockRows: 0 };
  // 'blocks' at 64 rows: at the demo's context of 64 each head gets its own block, so no FLOPs go to the block-diagonal mask;
  // measured against 128 and 256 (the mask's waste outweighed the fewer, larger matmuls at d64 and d128).
  return tf.getBackend() === 'wasm' ? { mode: 'blocks', blockRows: 64 } : { mode: 'batched', blockRows: 0 };
}
