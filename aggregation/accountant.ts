// Rényi DP accounting for the sampled Gaussian mechanism (Mironov, Talwar & Zhang 2019, integer orders) and conversion to (epsilon, delta).
import { fail } from './errors.ts';

/** Integer orders 2..64 and a few large ones, as TensorFlow Privacy's defaults without the fractional ones. */
export const DEFAULT_ORDERS: readonly number[] = [
  ...Array.from({ length: 63 }, (_, i) => i + 2),
  80,
  96,
  128,
  192,
  256,
  512,
];

function logAdd(a: number, b: number): number {
  if (a === -Infinity) return b;
  if (b === -Infinity) return a;
  const m = Math.max(a, b);
  return m + Math.log1p(Math.exp(-Math.abs(a - b)));
}

/**
 * RDP at integer order alpha of one step of the sampled Gaussian mechanism with sampling rate q and noise multiplier
 * sigma (noise std / L2 sensitivity). Mironov et al. 2019, Section 3.3:
 *   A_alpha = sum_{k=0..alpha} C(alpha,k) (1-q)^(alpha-k) q^k exp((k^2 - k) / (2 sigma^2)),  RDP = log(A_alpha) / (alpha - 1),
 * summed in log space. For q = 1 it is the Gaussian mechanism's alpha / (2 sigma^2).
 */
export function rdpSampledGaussian(q: number, sigma: number, alpha: number): number {
  if (!(q > 0 && q <= 1)) fail('E_ACCOUNTANT', `sampling rate must be in (0, 1], got ${q}`);
  if (!(sigma > 0) || !Number.isFinite(sigma))
    fail('E_ACCOUNTANT', `noise multiplier must be positive, got ${sigma}`);
  if (!Number.isInteger(alpha) || alpha < 2)
    fail('E_ACCOUNTANT', `orders must be integers >= 2, got ${alpha}`);
  if (q === 1) return alpha / (2 * sigma * sigma);
  const lq = Math.log(q);
  const l1q = Math.log1p(-q);
  let logA = -Infinity;
  let logC = 0;
  for (let k = 0; k <= alpha; k++) {
    if (k > 0) logC += Math.log(alpha - k + 1) - Math.log(k);
    logA = logAdd(logA, logC + k * lq + (alpha - k) * l1q + (k * k - k) / (2 * sigma * sigma));
  }
  return logA / (alpha - 1);
}

/**
 * (epsilon, delta) from RDP curves. 'improved' is Canonne, Kamath & Steinke 2020 / Balle et al. 2020 (Thm 21),
 * eps = rdp + log1p(-1/alpha) - log(delta·alpha)/(alpha-1), as TensorFlow Privacy computes it; 'classic' is
 * Mironov 2017 Prop. 3, eps = rdp + log(1/delta)/(alpha-1). The best order is reported with epsilon.
 */
export function epsilonFromRdp(
  orders: readonly number[],
  rdp: readonly number[],
  delta: number,
  conversion: 'improved' | 'classic' = 'improved',
): { epsilon: number; order: number } {
  if (!(delta > 0 && delta < 1)) fail('E_ACCOUNTANT', `delta must be in (0, 1), got ${delta}`);
  let best = { epsilon: Infinity, order: NaN };
  orders.forEach((a, i) => {
    const r = rdp[i]!;
    const eps =
      conversion === 'classic'
        ? r + Math.log(1 / delta) / (a - 1)
        : r + Math.log1p(-1 / a) - Math.log(delta * a) / (a - 1);
    if (eps < best.epsilon) best = { epsilon: Math.max(0, eps), order: a };
  });
  return best;
}

/** Tracks the privacy spent by repeated rounds of a sampled Gaussian mechanism (DP-FedAvg: one step per round). */
export class RdpAccountant {
  private steps = 0;
  private readonly perStep: number[];
  constructor(
    readonly samplingRate: number,
    readonly noiseMultiplier: number,
    readonly orders: readonly number[] = DEFAULT_ORDERS,
  ) {
    this.perStep = orders.map((a) => rdpSampledGaussian(samplingRate, noiseMultiplier, a));
  }
  step(count = 1): void {
    this.steps += count;
  }
  get stepsTaken(): number {
    return this.steps;
  }
  /** The RDP curve after the steps taken (RDP composes additively). */
  rdp(): number[] {
    return this.perStep.map((r) => r * this.steps);
  }
  epsilon(
    delta: number,
    conversion: 'improved' | 'classic' = 'improved',
  ): { epsilon: number; order: number } {
    return epsilonFromRdp(this.orders, this.rdp(), delta, conversion);
  }
}
