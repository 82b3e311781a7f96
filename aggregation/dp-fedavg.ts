// DP-FedAvg (McMahan et al. 2018, "Learning Differentially Private Recurrent Language Models"): each update clipped to clipNorm, summed unweighted, Gaussian noise of std noiseMultiplier·clipNorm added to the sum, divided by the expected number of clients; an RDP accountant reports epsilon after each round.
import { StreamingStrategy } from './streaming.ts';
import type { AnyClientUpdate, StrategyEnv } from './strategy.ts';
import type { StrategySpec } from './spec.ts';
import { sgd } from './server.ts';
import type { NamedTensor } from './tensors.ts';
import { RdpAccountant } from './accountant.ts';
import { secureRng, seededRng, seededRngFromString } from './rng.ts';
import type { Reduced } from './strategy.ts';

export class DpFedAvg extends StreamingStrategy {
  readonly accountant: RdpAccountant;
  private noise = new Float32Array(0);
  constructor(spec: StrategySpec, weights: NamedTensor[], env: StrategyEnv) {
    super(spec, weights, sgd(spec.options.serverLr), env);
    this.accountant = new RdpAccountant(spec.options.samplingRate, spec.options.noiseMultiplier);
  }
  /** Unweighted: each client's contribution is bounded by clipNorm, which is what the noise is calibrated to. */
  protected weightOf(_update: AnyClientUpdate): number {
    return 1;
  }
  protected override roundClip(): number {
    return this.spec.options.clipNorm;
  }
  protected override reduce(): Reduced {
    const o = this.spec.options;
    const sum = this.acc.view();
    const std = o.noiseMultiplier * o.clipNorm;
    // The round's noiseSeed (fixed on chain before any update arrives) or the spec's seed make the noise reproducible,
    // so the aggregate can be recomputed; without either, the OS CSPRNG.
    const rng =
      this.noiseSeed !== null
        ? seededRngFromString(this.noiseSeed)
        : o.seed === null
          ? secureRng()
          : seededRng(o.seed, this.round ?? 0);
    if (this.noise.length !== sum.length) this.noise = new Float32Array(sum.length);
    rng.gaussian(this.noise, std);
    // sum + noise in float32 (the store rounds); the server step divides by the expected clients.
    for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! + this.noise[i]!;
    this.accountant.step();
    const { epsilon, order } = this.accountant.epsilon(o.delta);
    return {
      delta: sum,
      divisor: o.expectedClients ?? this.workers.length,
      included: [...this.workers],
      metrics: {
        clipBound: o.clipNorm,
        noiseStd: std,
        epsilon,
        dpDelta: o.delta,
        rdpOrder: order,
        dpRounds: this.accountant.stepsTaken,
      },
    };
  }
  protected override extraState(): Record<string, number> {
    return { dpRounds: this.accountant.stepsTaken };
  }
  protected override loadExtraState(extra: Record<string, number>): void {
    const taken = extra.dpRounds ?? 0;
    if (Number.isSafeInteger(taken) && taken > this.accountant.stepsTaken)
      this.accountant.step(taken - this.accountant.stepsTaken);
  }
  protected override heldBytes(): number {
    return super.heldBytes() + this.noise.byteLength;
  }
}
