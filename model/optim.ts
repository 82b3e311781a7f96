// Optimisers (AdamW, SGD with momentum), the learning-rate schedule and global-norm clipping, as plain tf ops.
import * as tf from '@tensorflow/tfjs';

export type OptimiserName = 'adamw' | 'sgd';

export interface OptimiserOptions {
  name: OptimiserName;
  /** AdamW's decoupled decay (applied to matrices and embeddings only); SGD: L2-free. Default 0.01 for AdamW, 0 for SGD. */
  weightDecay?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** SGD only, default 0.9. */
  momentum?: number;
}

/** The options with every default filled in: the one place the defaults live (Optimiser, host-optim.ts, heap-optim.ts). */
export function optimiserSettings(o: OptimiserOptions): Required<OptimiserOptions> {
  return {
    name: o.name,
    weightDecay: o.weightDecay ?? (o.name === 'sgd' ? 0 : 0.01),
    beta1: o.beta1 ?? 0.9,
    beta2: o.beta2 ?? 0.95,
    eps: o.eps ?? 1e-8,
    momentum: o.momentum ?? 0.9,
  };
}

/** The factor that brings gradients of global norm `norm` down to clipNorm (0 or absent: no clipping). */
export function clipScale(norm: number, clipNorm = 0): number {
  return clipNorm > 0 ? Math.min(1, clipNorm / (norm + 1e-6)) : 1;
}

/** Whether weight decay applies to a parameter of this shape: matrices and embeddings, not biases and gains. */
export const decays = (shape: readonly number[]): boolean => shape.length >= 2;

export interface Schedule {
  /** Linear warmup from 0 over this many steps (default 0). */
  warmupSteps?: number;
  /** 'cosine' decays to minLrRatio·lr at the last step; 'constant' holds lr. Default 'cosine'. */
  decay?: 'cosine' | 'constant';
  minLrRatio?: number;
}

/** The learning rate at step (0-based) of totalSteps. */
export function learningRate(lr: number, step: number, totalSteps: number, schedule: Schedule = {}): number {
  const { warmupSteps = 0, decay = 'cosine', minLrRatio = 0.1 } = schedule;
  if (step < warmupSteps) return (lr * (step + 1)) / warmupSteps;
  if (decay === 'constant') return lr;
  const span = Math.max(1, totalSteps - warmupSteps - 1);
  const progress = Math.min(1, (step - warmupSteps) / span);
  return lr * (minLrRatio + (1 - minLrRatio) * 0.5 * (1 + Math.cos(Math.PI * progress)));
}

/** Scales grads in place of the list so their global L2 norm is at most maxNorm; returns the norm before clipping. */
export function clipByGlobalNorm(
  grads: tf.Tensor[],
  maxNorm: number | undefined,
): { grads: tf.Tensor[]; norm: tf.Scalar } {
  const norm = tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g))))) as tf.Scalar;
  if (maxNorm === undefined || maxNorm <= 0) return { grads, norm };
  const scale = tf.minimum(1, tf.div(maxNorm, tf.add(norm, 1e-6)));
  return { grads: grads.map((g) => tf.mul(g, scale)), norm };
}

/** Optimiser state lives outside tf.tidy; step() is called inside one and keeps only the new state. */
export class Optimiser {
  private readonly slots = new Map<string, tf.Tensor[]>();
  private t = 0;

  constructor(private readonly options: OptimiserOptions) {}

  /** Updates each variable from its gradient at learning rate lr. */
  step(vars: { name: string; v: tf.Variable }[], grads: tf.Tensor[], lr: number): void {
    this.t += 1;
    const o = optimiserSettings(this.options);
    vars.forEach(({ name, v }, i) => {
      const g = grads[i]!;
      const old = this.slots.get(name);
      const decaying = decays(v.shape);
      if (o.name === 'sgd') {
        const mu = o.momentum;
        const wd = o.weightDecay;
        const gd = wd > 0 && decaying ? tf.add(g, tf.mul(v, wd)) : g;
        const buf = old ? tf.add(tf.mul(old[0]!, mu), gd) : gd;
        v.assign(tf.sub(v, tf.mul(buf, lr)));
        this.keep(name, [buf], old);
      } else {
        const { beta1: b1, beta2: b2, eps, weightDecay: wd } = o;
        const m = old ? tf.add(tf.mul(old[0]!, b1), tf.mul(g, 1 - b1)) : tf.mul(g, 1 - b1);
        const s = old
          ? tf.add(tf.mul(old[1]!, b2), tf.mul(tf.square(g), 1 - b2))
          : tf.mul(tf.square(g), 1 - b2);
        const mHat = tf.div(m, 1 - b1 ** this.t);
        const sHat = tf.div(s, 1 - b2 ** this.t);
        let next = tf.sub(v, tf.mul(tf.div(mHat, tf.add(tf.sqrt(sHat), eps)), lr));
        if (wd > 0 && decaying) next = tf.sub(next, tf.mul(v, lr * wd));
        v.assign(next);
        this.keep(name, [m, s], old);
      }
    });
  }

  private keep(name: string, next: tf.Tensor[], old: tf.Tensor[] | undefined): void {
    // A slot may be the gradient itself (first SGD step): clone so tidy's disposal of the gradient leaves it alone.
    this.slots.set(
      name,
      next.map((t) => tf.keep(t.clone())),
    );
    old?.forEach((t) => t.dispose());
  }

  dispose(): void {
    for (const ts of this.slots.values()) ts.forEach((t) => t.dispose());
    this.slots.clear();
  }
}
