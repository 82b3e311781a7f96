// The FedAvg family's base: updates are folded into a running weighted sum as they arrive, so memory is O(params) whatever the number of workers.
import {
  BaseStrategy,
  type AnyClientUpdate,
  type ClientUpdate,
  type Reduced,
  type SparseClientUpdate,
  type StrategyEnv,
} from './strategy.ts';
import type { StrategySpec } from './spec.ts';
import type { ServerOptimiser } from './server.ts';
import type { NamedTensor, SparseTensor } from './tensors.ts';
import { scatterAxpyF32 } from './kernels/sparse.ts';
import type { StreamAccumulator } from './kernels/types.ts';
import { JsStreamAccumulator } from './kernels/reference.ts';
import { WasmStreamAccumulator, simdAvailable, WASM_MAX_BYTES } from './kernels/simd.ts';

export function streamAccumulator(size: number, env: StrategyEnv, stateArrays = 0): StreamAccumulator {
  const fits = 4 * (2 * ((size + 15) & ~15) + 16384) <= WASM_MAX_BYTES;
  if (env.backend === 'js' || !simdAvailable() || !fits) return new JsStreamAccumulator(size);
  return new WasmStreamAccumulator(size, stateArrays);
}

/**
 * One fused pass writes sum + w·x into a spare buffer and measures the norm; the spare becomes the sum only if the
 * update passes unclipped. An update over the round's clip bound is then added, scaled, to the sum in place (a second
 * pass); when most of the round's updates so far were clipped, the norm pass comes first instead. Both ways give the
 * same bytes. aggregate() takes the mean and the server step in one pass over the sum, without allocating.
 * Memory: 2 x params float32 (sum and spare) + the weights + optimiser state.
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
    this.acc = streamAccumulator(this.layout.size, env, server.state.length);
    this.global = this.acc.holdWeights(this.global);
    server.moveState(this.acc.holdState(server.state));
  }

  /**
   * FedAvg's plain step runs fused with the mean in the accumulator (a SIMD pass on the wasm backend); the delta of a
   * streaming rule is always the accumulator's sum (reduce returns acc.view()).
   */
  protected override step(delta: Float32Array, divisor: number): number {
    if (this.server.kind === 'sgd') return this.acc.sgdStep(divisor, this.spec.options.serverLr);
    return this.acc.serverStep(this.server, divisor) ?? super.step(delta, divisor);
  }

  override inputBuffer(): Float32Array {
    return this.acc.input();
  }

  /** The update's weight in the sum. */
  protected abstract weightOf(update: AnyClientUpdate): number;

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
    let clipped: boolean;
    if (bound !== null && 2 * this.clippedCount > this.workers.length) {
      norm = this.normOf(this.acc.sumSquares(parts, offsets), parts);
      clipped = norm > bound;
      this.acc.addInPlace(parts, offsets, clipped ? (w * bound) / norm : w);
    } else {
      norm = this.normOf(this.acc.stage(parts, offsets, w), parts);
      clipped = bound !== null && norm > bound;
      if (clipped) this.acc.addInPlace(parts, offsets, (w * bound!) / norm);
      else this.acc.commit();
    }
    this.totalWeight += w;
    return { norm, clipped };
  }

  /**
   * A sparse update is measured first (O(k)) and then added in place at its non-zero positions only: the same bytes as
   * the dense stage and commit (kernels/sparse.ts), without a pass over the model's size.
   */
  protected override ingestSparse(
    update: SparseClientUpdate,
    parts: SparseTensor[],
  ): { norm: number; clipped: boolean } {
    const w = this.weightOf(update);
    const norm = this.sparseNormOf(parts);
    const bound = this.clipBound;
    const clipped = bound !== null && norm > bound;
    // view() is +0 everywhere while the sum is empty; adding an update of no tensors marks it as holding one.
    this.acc.view();
    this.acc.addInPlace([], [], w);
    scatterAxpyF32(this.acc.view(), parts, this.layout.offsets, clipped ? (w * bound) / norm : w);
    this.totalWeight += w;
    return { norm, clipped };
  }

  /** Σ w·x, divided by Σ w in the server step. */
  protected reduce(): Reduced {
    return {
      delta: this.acc.view(),
      divisor: this.totalWeight,
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
