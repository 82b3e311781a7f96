// The optimiser step on wasm with fedtune's kernels: the same FedProx, global-norm clipping and AdamW or SGD as
// host-optim.ts, computed by kernels over the tensors where they live (the backend's heap) instead of JS loops over
// host copies. The kernels do host-optim.ts' arithmetic in its order (double arithmetic, float storage), so both give
// the same bits (tested); this one skips reading every gradient out and writing every weight back in.
import * as tf from '@tensorflow/tfjs';
import type { HostStepOptions } from './host-optim.ts';
import { adamwStep, proxSumSquares, sgdStep } from './kernels.ts';
import { clipScale, decays, optimiserSettings, type OptimiserOptions } from './optim.ts';

export class HeapOptimiser {
  /** The starting weights (FedProx's anchor) and the optimiser's state: kept tensors, released by dispose(). */
  private readonly anchor: tf.Tensor[];
  private slots: tf.Tensor[][];
  private t = 0;

  constructor(
    private readonly options: OptimiserOptions,
    private readonly vars: { name: string; v: tf.Variable }[],
  ) {
    this.anchor = vars.map(({ v }) => tf.keep(v.clone()));
    const nSlots = options.name === 'sgd' ? 1 : 2;
    this.slots = vars.map(({ v }) => Array.from({ length: nSlots }, () => tf.keep(tf.zeros(v.shape))));
  }

  /** Applies one step from the gradients (tensors, the variables' order); returns their norm before clipping. */
  step(grads: tf.Tensor[], { lr, clipNorm = 0, fedProxMu = 0 }: HostStepOptions): number {
    this.t += 1;
    const o = optimiserSettings(this.options);
    const mu = fedProxMu > 0 ? fedProxMu : 0;
    let sq = 0;
    grads.forEach((g, i) => (sq += proxSumSquares(g, this.vars[i]!.v, this.anchor[i]!, mu)));
    const norm = Math.sqrt(sq);
    const scale = clipScale(norm, clipNorm);
    const { beta1: b1, beta2: b2, eps, momentum, weightDecay: wd } = o;
    this.vars.forEach(({ v }, i) => {
      const decay = decays(v.shape) ? wd : 0;
      const g = grads[i]!;
      const anchor = this.anchor[i]!;
      const slots = this.slots[i]!;
      const next =
        o.name === 'sgd'
          ? sgdStep(
              { w: v, g, anchor, buf: slots[0]! },
              { first: this.t === 1 ? 1 : 0, lr, momentum, decay, scale, mu },
            )
          : adamwStep(
              { w: v, g, anchor, m: slots[0]!, s: slots[1]! },
              {
                lr,
                b1,
                b2,
                eps,
                c1: 1 - b1 ** this.t,
                c2: 1 - b2 ** this.t,
                decay,
                scale,
                mu,
              },
            );
      const [w2, ...state] = next;
      v.assign(w2!);
      w2!.dispose();
      tf.dispose(slots);
      this.slots[i] = state.map((s) => tf.keep(s));
    });
    return norm;
  }

  dispose(): void {
    tf.dispose(this.anchor);
    this.slots.forEach((s) => tf.dispose(s));
    this.slots = [];
  }
}
