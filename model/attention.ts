// Causal self-attention for the wasm backend as one op with a hand-written gradient: every (sequence, head group) is a
// 2-D matmul (the only kind XNNPACK serves), the transposes those matmuls need are done once for all blocks as one 3-D
// transpose, and nothing inside the op goes on tfjs's tape (its fixed cost per kernel dominated small models).
import * as tf from '@tensorflow/tfjs';

const maskCache = new Map<string, Float32Array>();

/** An additive causal mask for `groups` sequences of length t laid out block-diagonally: [g*t, g*t]. */
export function causalMask(groups: number, t: number): Float32Array {
  const key = `${groups}x${t}`;
  let m = maskCache.get(key);
  if (m === undefined) {
    const n = groups * t;
    m = new Float32Array(n * n).fill(-1e9);
    for (let g = 0; g < groups; g++) {
      for (let i = 0; i < t; i++) {
        const row = (g * t + i) * n + g * t;
        for (let j = 0; j <= i; j++) m[row + j] = 0;
      }
    }
    maskCache.set(key, m);
  }
  return m;
}

/**
 * qkv: [b*t, 3d] (q | k | v, heads contiguous inside each) → [b*t, d]. s heads of one sequence share a 2-D block of
 * about blockRows rows (s·t rows, a block-diagonal causal mask): fewer, larger matmuls for short sequences; at the
 * demo's context of 64 each head gets its own block.
 */
export function blockAttention(
  qkv: tf.Tensor2D,
  b: number,
  t: number,
  nHead: number,
  blockRows: number,
): tf.Tensor2D {
  const d = qkv.shape[1] / 3;
  const hd = d / nHead;
  const scale = 1 / Math.sqrt(hd);
  let s = Math.max(1, Math.min(nHead, Math.floor(blockRows / t)));
  while (nHead % s !== 0) s--;
  const g = nHead / s;
  const rows = s * t;
  const pairs: [number, number][] = [];
  for (let seq = 0; seq < b; seq++) for (let grp = 0; grp < g; grp++) pairs.push([seq, grp]);
  // Blocks are laid out (sequence, q|k|v, group): [b*3*g, rows, hd].
  const at = <T>(blocks: T[], seq: number, part: number, grp: number) => blocks[(seq * 3 + part) * g + grp]!;
  const toBlocks = (x: tf.Tensor) =>
    tf.reshape(tf.transpose(tf.reshape(x, [b, t, 3 * nHead, hd]), [0, 2, 1, 3]), [b * 3 * g, rows, hd]);
  const unstack = (x: tf.Tensor) => tf.unstack(x) as tf.Tensor2D[];
  const transposed = (x: tf.Tensor) => unstack(tf.transpose(x, [0, 2, 1]));

  const f = tf.customGrad((x, save) => {
    const blocks = toBlocks(x as tf.Tensor);
    const bs = unstack(blocks);
    const bts = transposed(blocks); // [hd, rows] each
    const scores = tf.stack(pairs.map(([seq, grp]) => tf.matMul(at(bs, seq, 0, grp), at(bts, seq, 1, grp))));
    const mask = tf.tensor2d(causalMask(s, t), [rows, rows]);
    const probs = tf.softmax(tf.add(tf.mul(scores, scale), mask)); // [b*g, rows, rows]
    const ps = unstack(probs);
    const out = tf.stack(pairs.map(([seq, grp], i) => tf.matMul(ps[i]!, at(bs, seq, 2, grp)))); // [b, h, t, hd]
    (save as tf.GradSaveFunc)([blocks, probs]);
    return {
      value: tf.reshape(tf.transpose(tf.reshape(out, [b, nHead, t, hd]), [0, 2, 1, 3]), [b * t, d]),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sBlocks, sProbs] = saved as [tf.Tensor3D, tf.Tensor3D];
        const sb = unstack(sBlocks);
        const sbt = transposed(sBlocks);
        const dOut = unstack(
          tf.reshape(tf.transpose(tf.reshape(dy, [b, t, nHead, hd]), [0, 2, 1, 3]), [b * g, rows, hd]),
        );
        const pts = transposed(sProbs);
        const dP = tf.stack(pairs.map(([seq, grp], i) => tf.matMul(dOut[i]!, at(sbt, seq, 2, grp))));
        // softmax: dS = P·(dP − Σ_j dP·P), times the scale; masked entries have P = 0, so their gradient is 0.
        const dS = tf.mul(tf.mul(sProbs, tf.sub(dP, tf.sum(tf.mul(dP, sProbs), -1, true))), scale);
        const dss = unstack(dS);
        const dsts = transposed(dS);
        const parts: tf.Tensor2D[][] = [[], [], []];
        const grads: tf.Tensor2D[] = [];
        pairs.forEach(([seq, grp], i) => {
          parts[0]!.push(tf.matMul(dss[i]!, at(sb, seq, 1, grp))); // dQ = dS @ K
          parts[1]!.push(tf.matMul(dsts[i]!, at(sb, seq, 0, grp))); // dK = dSᵀ @ Q
          parts[2]!.push(tf.matMul(pts[i]!, dOut[i]!)); // dV = Pᵀ @ dO
          if (grp === g - 1) {
            for (const part of parts) grads.push(...part.splice(0));
          }
        });
        const dBlocks = tf.reshape(tf.stack(grads), [b, 3 * nHead, t, hd]);
        return tf.reshape(tf.transpose(dBlocks, [0, 2, 1, 3]), [b * t, 3 * d]);
      },
    };
  });
  return f(qkv) as tf.Tensor2D;
}
