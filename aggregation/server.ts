// Server optimisers: how the aggregated delta becomes new global weights (plain step, momentum, and Reddi et al.'s FedAdam, FedYogi, FedAdagrad).
import type { StrategyOptions } from './spec.ts';

export interface ServerOptimiser {
  readonly kind: 'sgd' | 'momentum' | 'adam' | 'yogi' | 'adagrad';
  /**
   * One pass over [from, to), in place and allocation-free: d[i] <- fround(d[i] / fround(divisor)) (the mean, fused
   * here), then moves weights x along d. Every value written is float32 arithmetic, one rounding per operation, so the
   * result is the same bytes on any machine (docs/aggregation.md, "Determinism"); the wasm kernels (kernels/simd-opt.ts
   * optStep) do the same operations in the same order.
   */
  step(x: Float32Array, d: Float32Array, divisor?: number, from?: number, to?: number): void;
  /** The state arrays: momentum [v], the adaptive ones [m, v], sgd none. */
  readonly state: Float32Array[];
  /** Continues with these arrays as the state (the caller copied the values): the accumulator's wasm memory. */
  moveState(arrays: Float32Array[]): void;
  /** The hyper-parameters in float32 as the kernels take them: lr, then momentum's beta, or b1, 1-b1, b2, 1-b2, tau. */
  readonly params: number[];
  /** Bytes of optimiser state (O(params) for momentum and the adaptive ones, zero for sgd). */
  readonly bytes: number;
}

const f = Math.fround;

/** x <- x + lr·Δ. */
export function sgd(lr: number): ServerOptimiser {
  const lrf = f(lr);
  return {
    kind: 'sgd',
    bytes: 0,
    state: [],
    moveState() {},
    params: [lrf],
    step(x, d, divisor = 1, from = 0, to = x.length) {
      const q = f(divisor);
      for (let i = from; i < to; i++) {
        const di = f(d[i]! / q);
        d[i] = di;
        x[i] = x[i]! + f(lrf * di);
      }
    },
  };
}

/** FedAvgM (Hsu et al. 2019): v <- momentum·v + Δ; x <- x + lr·v. */
export function momentum(lr: number, beta: number, size: number): ServerOptimiser {
  let v: Float32Array = new Float32Array(size);
  const lrf = f(lr);
  const bf = f(beta);
  return {
    kind: 'momentum',
    bytes: 4 * size,
    get state() {
      return [v];
    },
    moveState([to]) {
      v = to!;
    },
    params: [lrf, bf],
    step(x, d, divisor = 1, from = 0, to = x.length) {
      const q = f(divisor);
      for (let i = from; i < to; i++) {
        const di = f(d[i]! / q);
        d[i] = di;
        const vi = f(f(bf * v[i]!) + di);
        v[i] = vi;
        x[i] = x[i]! + f(lrf * vi);
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
  let m: Float32Array = new Float32Array(size);
  let v: Float32Array = new Float32Array(size).fill(o.tau * o.tau);
  const params = [o.serverLr, o.beta1, 1 - o.beta1, o.beta2, 1 - o.beta2, o.tau].map(f);
  const [lr, b1, c1, b2, c2, tau] = params as [number, number, number, number, number, number];
  return {
    kind,
    bytes: 8 * size,
    get state() {
      return [m, v];
    },
    moveState([toM, toV]) {
      m = toM!;
      v = toV!;
    },
    params,
    step(x, d, divisor = 1, from = 0, to = x.length) {
      const q = f(divisor);
      for (let i = from; i < to; i++) {
        const di = f(d[i]! / q);
        d[i] = di;
        const mi = f(f(b1 * m[i]!) + f(c1 * di));
        m[i] = mi;
        const d2 = f(di * di);
        let vi = v[i]!;
        if (kind === 'adam') vi = f(f(b2 * vi) + f(c2 * d2));
        else if (kind === 'yogi') vi = f(vi - f(f(c2 * d2) * Math.sign(f(vi - d2))));
        else vi = f(vi + d2);
        v[i] = vi;
        x[i] = x[i]! + f(f(lr * mi) / f(f(Math.sqrt(vi)) + tau));
      }
    },
  };
}
