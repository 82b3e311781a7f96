// The FedAvg family's base: updates are folded into a running weighted sum as they arrive, so memory is O(params) whatever the number of workers.
import { BaseStrategy, type ClientUpdate, type StrategyEnv } from './strategy.ts';
import type { StrategySpec } from './spec.ts';
import type { ServerOptimiser } from './server.ts';
import type { NamedTensor } from './tensors.ts';
import type { StreamAccumulator } from './kernels/types.ts';
import { JsStreamAccumulator } from './kernels/reference.ts';
import { WasmStreamAccumulator, simdAvailable, WASM_MAX_BYTES } from './kernels/simd.ts';

export function streamAccumulator(size: number, env: StrategyEnv): StreamAccumulator {
  const fits = 4 * (2 * size + 16384 + 8) <= WASM_MAX_BYTES;
  if (env.backend === 'js' || !simdAvailable() || !fits) return new JsStreamAccumulator(size);
  return new WasmStreamAccumulator(size);
}

/**
 * Without clipping, one fused pass writes sum + w·x into a spare buffer and measures the norm; the spare becomes the
 * sum only if the update passes. With a clip bound known when the update arrives, a norm pass comes first and the
 * scaled update is added in place. Memory: 2 x params float32 (sum and spare) + the weights + optimiser state.
 */
export abstract class StreamingStrategy extends BaseStrategy {
  protected readonly acc: StreamAccumulator;
  protected totalWeight = 0;
  protected clipBound: number | null = null;
  get backend(): 'wasm' | 'js' {
    return this.acc.backend;
  }

  constructor(spec: StrategySpec, weights: NamedTensor[], server: ServerOptimiser, env: StrategyEnv) {
    super(spec, weights, server);
    this.acc = streamAccumulator(this.layout.size, env);
  }

  /** The update's weight in the sum. */
  protected abstract weightOf(update: ClientUpdate): number;

  protected openRound(): void {
    this.acc.reset();
    this.totalWeight = 0;
    this.clipBound = this.roundClip();
  }
  protected closeRound(): void {
    this.acc.reset();
  }

  protected ingest(update: ClientUpdate, parts: Float32Array[]): { norm: number; clipped: boolean } {
    const w = this.weightOf(update);
    const offsets = this.layout.offsets;
    const bound = this.clipBound;
    let norm: number;
    let clipped = false;
    if (bound === null) {
      norm = this.normOf(this.acc.stage(parts, offsets, w), parts);
      this.acc.commit();
    } else {
      norm = this.normOf(this.acc.sumSquares(parts, offsets), parts);
      clipped = norm > bound;
      this.acc.addInPlace(parts, offsets, clipped ? (w * bound) / norm : w);
    }
    this.totalWeight += w;
    return { norm, clipped };
  }

  /** Σ w·x / Σ w. */
  protected mean(): Float32Array {
    const d = this.acc.read();
    const inv = 1 / this.totalWeight;
    for (let i = 0; i < d.length; i++) d[i] = d[i]! * inv;
    return d;
  }

  protected reduce(): { delta: Float32Array; included: string[]; metrics: Record<string, number> } {
    return {
      delta: this.mean(),
      included: [...this.workers],
      metrics: this.clipBound === null ? {} : { clipBound: this.clipBound },
    };
  }

  protected heldBytes(): number {
    return this.acc.bytes;
  }
  dispose(): void {
    this.acc.dispose();
  }
}
