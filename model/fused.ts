// Layer norm as one op computed in JS over host copies, with a hand-written gradient: as tf ops it was 9 kernels forward
// and about 25 backward (axis reductions, broadcasts), several of them slow ones on wasm. Measured per fwd+bwd of
// [512, 64] and [512, 128] on wasm: 2.0 ms against 2.6 ms, 3.9 against 5.1 (CPU time). Bias + GELU done the same way
// was slower than its kernels (JS's Math.exp and plain loops lose to XNNPACK's SIMD on [512, 256] and up), so it is not.
import * as tf from '@tensorflow/tfjs';

const values = (t: tf.Tensor) => t.dataSync() as Float32Array;

/**
 * Layer norm over the last axis of x[n, d]: (x - mean)/sqrt(var + eps)·g + b. One op forward, one backward; the
 * backward reuses the forward's normalised rows and reciprocal deviations (kept in JS, not as tensors).
 */
export function layerNormHost(x: tf.Tensor2D, g: tf.Tensor, b: tf.Tensor, eps = 1e-5): tf.Tensor2D {
  const [n, d] = x.shape;
  const f = tf.customGrad((xi, gi, bi) => {
    const xs = values(xi as tf.Tensor);
    const gs = values(gi as tf.Tensor);
    const bs = values(bi as tf.Tensor);
    const xhat = new Float32Array(n * d);
    const rstd = new Float64Array(n);
    const y = new Float32Array(n * d);
    for (let r = 0; r < n; r++) {
      const o = r * d;
      let sum = 0;
      for (let c = 0; c < d; c++) sum += xs[o + c]!;
      const mean = sum / d;
      let sq = 0;
      for (let c = 0; c < d; c++) {
        const v = xs[o + c]! - mean;
        sq += v * v;
      }
      const rs = 1 / Math.sqrt(sq / d + eps);
      rstd[r] = rs;
      for (let c = 0; c < d; c++) {
        const h = (xs[o + c]! - mean) * rs;
        xhat[o + c] = h;
        y[o + c] = h * gs[c]! + bs[c]!;
      }
    }
    return {
      value: tf.tensor2d(y, [n, d]),
      gradFunc: (dy: tf.Tensor) => {
        const dys = values(dy);
        const dx = new Float32Array(n * d);
        const dg = new Float64Array(d);
        const db = new Float64Array(d);
        for (let r = 0; r < n; r++) {
          const o = r * d;
          // dxhat = dy·g; dx = rstd·(dxhat − mean(dxhat) − xhat·mean(dxhat·xhat))
          let m1 = 0;
          let m2 = 0;
          for (let c = 0; c < d; c++) {
            const gy = dys[o + c]!;
            const h = xhat[o + c]!;
            dg[c] += gy * h;
            db[c] += gy;
            const dh = gy * gs[c]!;
            m1 += dh;
            m2 += dh * h;
          }
          m1 /= d;
          m2 /= d;
          const rs = rstd[r]!;
          for (let c = 0; c < d; c++) {
            dx[o + c] = rs * (dys[o + c]! * gs[c]! - m1 - xhat[o + c]! * m2);
          }
        }
        return [
          tf.tensor2d(dx, [n, d]),
          tf.tensor(Float32Array.from(dg), g.shape),
          tf.tensor(Float32Array.from(db), b.shape),
        ];
      },
    };
  });
  return f(x, g, b) as tf.Tensor2D;
}
