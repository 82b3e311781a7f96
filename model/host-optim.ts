// The optimiser step on host copies of the weights (wasm, cpu): FedProx, global-norm clipping and AdamW or SGD in one
// JS loop per tensor, instead of about twelve tiny kernels per tensor, which cost more in dispatch than in arithmetic.
import * as tf from '@tensorflow/tfjs';
import { clipScale, decays, optimiserSettings, type OptimiserOptions } from './optim.ts';

export interface HostStepOptions {
  lr: number;
  /** Clip the gradients' global L2 norm to this; 0 or absent: no clipping. */
  clipNorm?: number;
  /** FedProx: adds mu·(w - w_start) to each gradient. */
  fedProxMu?: number;
}

/** Owns float32 copies of the variables, their optimiser state, and the starting weights (FedProx's anchor). */
export class HostOptimiser {
  private readonly values: Float32Array[];
  private readonly anchor: Float32Array[];
  private readonly slots: Float32Array[][];
  private t = 0;

  constructor(
    private readonly options: OptimiserOptions,
    private readonly vars: { name: string; v: tf.Variable }[],
  ) {
    // dataSync may hand back the backend's own storage (cpu): copy before writing.
    this.values = vars.map(({ v }) => Float32Array.from(v.dataSync() as Float32Array));
    this.anchor = this.values.map((a) => a.slice());
    const nSlots = options.name === 'sgd' ? 1 : 2;
    this.slots = this.values.map((a) => Array.from({ length: nSlots }, () => new Float32Array(a.length)));
  }

  /** Applies one step from the gradients (host arrays, the variables' order); returns their norm before clipping. */
  step(grads: Float32Array[], { lr, clipNorm = 0, fedProxMu = 0 }: HostStepOptions): number {
    this.t += 1;
    const o = optimiserSettings(this.options);
    if (fedProxMu > 0) {
      grads = grads.map((g, i) => {
        const w = this.values[i]!;
        const a = this.anchor[i]!;
        const out = new Float32Array(g.length);
        for (let j = 0; j < g.length; j++) out[j] = g[j]! + fedProxMu * (w[j]! - a[j]!);
        return out;
      });
    }
    let sq = 0;
    for (const g of grads) for (let j = 0; j < g.length; j++) sq += g[j]! * g[j]!;
    const norm = Math.sqrt(sq);
    const scale = clipScale(norm, clipNorm);
    const { beta1: b1, beta2: b2, eps, momentum: mu, weightDecay: wd } = o;
    const c1 = 1 - b1 ** this.t;
    const c2 = 1 - b2 ** this.t;
    this.vars.forEach(({ v }, i) => {
      const g = grads[i]!;
      const w = this.values[i]!;
      const decay = decays(v.shape) ? wd : 0;
      if (o.name === 'sgd') {
        const buf = this.slots[i]![0]!;
        const first = this.t === 1;
        for (let j = 0; j < w.length; j++) {
          const gd = g[j]! * scale + decay * w[j]!;
          buf[j] = first ? gd : mu * buf[j]! + gd;
          w[j] = w[j]! - lr * buf[j]!;
        }
      } else {
        const [m, s] = this.slots[i] as [Float32Array, Float32Array];
        for (let j = 0; j < w.length; j++) {
          const gj = g[j]! * scale;
          m[j] = b1 * m[j]! + (1 - b1) * gj;
          s[j] = b2 * s[j]! + (1 - b2) * gj * gj;
          const wj = w[j]!;
          w[j] = wj - (lr * (m[j]! / c1)) / (Math.sqrt(s[j]! / c2) + eps) - lr * decay * wj;
        }
      }
      // A copy: on cpu the new tensor may keep the array it is given, and these values change next step.
      tf.tidy(() => v.assign(tf.tensor(w.slice(), v.shape)));
    });
    return norm;
  }
}
