// Server optimisers: how the aggregated delta becomes new global weights (plain step, momentum, and Reddi et al.'s FedAdam, FedYogi, FedAdagrad).
import type { StrategyOptions } from './spec.ts';

export interface ServerOptimiser {
  readonly kind: 'sgd' | 'momentum' | 'adam' | 'yogi' | 'adagrad';
  /** Moves weights (in place) along the aggregated delta (new - base, averaged). */
  step(weights: Float32Array, delta: Float32Array): void;
  /** Bytes of optimiser state (O(params) for momentum and the adaptive ones, zero for sgd). */
  readonly bytes: number;
  /** The optimiser's state arrays (views, in a fixed order): what a verifier needs to repeat the next step. */
  readonly state: readonly Float32Array[];
}

/** x <- x + lr·Δ. */
export function sgd(lr: number): ServerOptimiser {
  return {
    kind: 'sgd',
    bytes: 0,
    state: [],
    step(x, d) {
      for (let i = 0; i < x.length; i++) x[i] = x[i]! + lr * d[i]!;
    },
  };
}

/** FedAvgM (Hsu et al. 2019): v <- momentum·v + Δ; x <- x + lr·v. */
export function momentum(lr: number, beta: number, size: number): ServerOptimiser {
  const v = new Float32Array(size);
  return {
    kind: 'momentum',
    bytes: 4 * size,
    state: [v],
    step(x, d) {
      for (let i = 0; i < x.length; i++) {
        const vi = beta * v[i]! + d[i]!;
        v[i] = vi;
        x[i] = x[i]! + lr * vi;
      }
    },
  };
}

/**
 * Reddi et al. 2021, Algorithm 2: m <- b1·m + (1-b1)·Δ; v by the variant; x <- x + lr·m / (sqrt(v) + tau).
 * v starts at tau² (the paper's v_{-1} >= tau²); there is no bias correction, as in the paper.
 */
export function adaptive(
  kind: 'adam' | 'yogi' | 'adagrad',
  o: Pick<StrategyOptions, 'serverLr' | 'beta1' | 'beta2' | 'tau'>,
  size: number,
): ServerOptimiser {
  const m = new Float32Array(size);
  const v = new Float32Array(size).fill(o.tau * o.tau);
  const { serverLr: lr, beta1: b1, beta2: b2, tau } = o;
  return {
    kind,
    bytes: 8 * size,
    state: [m, v],
    step(x, d) {
      for (let i = 0; i < x.length; i++) {
        const di = d[i]!;
        const mi = b1 * m[i]! + (1 - b1) * di;
        m[i] = mi;
        const d2 = di * di;
        let vi = v[i]!;
        if (kind === 'adam') vi = b2 * vi + (1 - b2) * d2;
        else if (kind === 'yogi') vi = vi - (1 - b2) * d2 * Math.sign(vi - d2);
        else vi = vi + d2;
        v[i] = vi;
        x[i] = x[i]! + (lr * mi) / (Math.sqrt(vi) + tau);
      }
    },
  };
}
