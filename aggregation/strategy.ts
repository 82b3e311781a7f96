// The strategy interface that follows a round's life (configure, accept one update at a time, aggregate, evaluate), and the shared checks every strategy runs before an update touches its aggregate.
import { AggregationError, fail } from './errors.ts';
import { sumSquaresF32 } from './kernels/reference.ts';
import { sparseSumSquaresF32 } from './kernels/sparse.ts';
import type { StrategyName, StrategySpec } from './spec.ts';
import type { ServerOptimiser } from './server.ts';
import {
  firstNonFinite,
  layoutOf,
  orderSparse,
  orderTensors,
  unflatten,
  flatten,
  type Layout,
  type NamedTensor,
  type SparseTensor,
} from './tensors.ts';
import { decodeState, encodeState } from './state.ts';

/** A worker's update: a delta (new - base) per tensor, with the number of samples it trained on. */
export interface ClientUpdate {
  worker: string;
  samples: number;
  tensors: NamedTensor[];
}

/**
 * A top-k update as its non-zero values (decodeSparseUpdate): checked and folded in O(k), with the same result, bit for
 * bit, as the same update decoded dense.
 */
export interface SparseClientUpdate {
  worker: string;
  samples: number;
  sparse: SparseTensor[];
}

export type AnyClientUpdate = ClientUpdate | SparseClientUpdate;

const isSparse = (u: AnyClientUpdate): u is SparseClientUpdate =>
  typeof u === 'object' && u !== null && 'sparse' in u;

export type AcceptResult =
  { ok: true; norm: number; clipped: boolean } | { ok: false; code: string; reason: string };

/** A round's local training, as every worker's task carries it (names as in the proposal's hyper-parameters). */
export interface FitConfig {
  localSteps: number;
  batchSize: number;
  learningRate: number;
  optimiser: 'adamw' | 'sgd';
  /** FedProx proximal weight for the local objective (0: plain local training). */
  fedProxMu: number;
  /** Local gradient clipping by global norm. */
  gradClipNorm: number;
  warmupSteps: number;
  /** The learning rate over the task's local steps: 'cosine' decays to minLrRatio·learningRate, 'constant' holds it. */
  schedule: 'cosine' | 'constant';
  minLrRatio: number;
}

export const DEFAULT_FIT: FitConfig = {
  localSteps: 1,
  batchSize: 16,
  learningRate: 1e-3,
  optimiser: 'adamw',
  fedProxMu: 0,
  gradClipNorm: 1,
  warmupSteps: 0,
  schedule: 'cosine',
  minLrRatio: 0.1,
};

/** What the coordinator sends workers with a round's task. */
export interface RoundConfig {
  round: number;
  strategy: StrategyName;
  /** Updates with a larger L2 norm are rejected. */
  maxNorm: number | null;
  /** The clip bound the server will apply this round (null: none, or adaptive and decided at aggregation). */
  clipNorm: number | null;
  /** FedProx mu for the workers' local objective (0: plain local training). */
  fedProxMu: number;
  minUpdates: number;
  /** The local training every task of this round carries: the proposal's, with this strategy's FedProx mu. */
  fit: FitConfig;
  /** The seed the round's DP noise is drawn from (RoundOptions.noiseSeed), or null (dp-fedavg: the spec's seed, else the CSPRNG). */
  noiseSeed: string | null;
}

/** What the coordinator fixes when it opens a round, beside the proposal's local training. */
export interface RoundOptions {
  /**
   * The seed of this round's DP noise (dp-fedavg), so anyone can recompute the aggregate: a u32, or a hex string of
   * 1..64 bytes such as the hash of the block that opened the round (fixed before any update arrives). Strategies
   * without noise ignore it.
   */
  noiseSeed?: number | string | null;
}

export interface AggregateResult {
  round: number;
  /**
   * The new global weights: views of the strategy's own weights (no copy), which the next aggregate() updates in
   * place; copy them to keep this round's.
   */
  weights: NamedTensor[];
  /** The aggregated delta before the server optimiser: views of a buffer the next round's updates overwrite. */
  delta: NamedTensor[];
  /** Workers whose updates went into the aggregate (Krum: the selected ones). */
  included: string[];
  metrics: Record<string, number>;
}

export interface EvaluateResult {
  worker: string;
  samples: number;
  metrics: Record<string, number>;
}

export interface Strategy {
  readonly spec: StrategySpec;
  /** Which kernels run: WebAssembly SIMD or the plain-JS reference. */
  readonly backend: 'wasm' | 'js';
  /** The current global weights (views, updated in place by aggregate(); do not mutate). */
  weights(): NamedTensor[];
  /**
   * Opens a round (after the previous one was aggregated); returns what workers need to know. `fit` is the proposal's
   * local training; the strategy completes it (a spec's fedProxMu overrides the proposal's fedProxMu when set).
   */
  configureRound(round: number, fit?: Partial<FitConfig>, options?: RoundOptions): RoundConfig;
  /** Validates one update (dense or sparse) and folds it in; a rejected update leaves the aggregate unchanged. */
  accept(update: AnyClientUpdate): AcceptResult;
  /**
   * The checks accept() makes (round, shape, finiteness, norm bound), leaving the aggregate and the round untouched: for
   * whoever only needs to know an update would be accepted (a coordinator derives the aggregate later, in leaf order).
   */
  check(update: AnyClientUpdate): AcceptResult;
  /**
   * A flat buffer of the model's parameter count to decode an update into (decodeUpdate's `out`, with the model's
   * spec as `expect`) right before accept(): a streaming strategy on the wasm backend keeps it in the kernel's memory
   * and reads an update there without a copy. One buffer, the same each call: decode and accept one update at a time.
   */
  inputBuffer(): Float32Array;
  /** Closes the round: aggregates, applies the server optimiser, returns the new weights and metrics. */
  aggregate(): AggregateResult;
  /** Sample-weighted mean of the workers' evaluation metrics (Flower's aggregate_evaluate). */
  evaluate(results: EvaluateResult[]): Record<string, number>;
  /**
   * What the next round's aggregate depends on besides the weights (the server optimiser's moments, the norms that
   * adaptive clipping reads, the rounds taken), as bytes: published with each checkpoint so anyone can repeat a round.
   */
  exportState(): Uint8Array;
  /** Takes up the state exportState wrote after round r, so the next round to configure is r + 1. */
  restoreState(bytes: Uint8Array): void;
  /** Bytes held now (accumulators, stored updates, optimiser state, weights). */
  memoryBytes(): number;
  dispose(): void;
}

export interface StrategyEnv {
  backend: 'auto' | 'wasm' | 'js';
}

/** Sample-weighted mean of each metric over the results that report it. */
export function aggregateEvaluate(results: EvaluateResult[]): Record<string, number> {
  const sums = new Map<string, [number, number]>();
  for (const r of results) {
    if (!(r.samples > 0) || !Number.isFinite(r.samples)) continue;
    for (const [k, v] of Object.entries(r.metrics)) {
      if (!Number.isFinite(v)) continue;
      const s = sums.get(k) ?? [0, 0];
      s[0] += r.samples * v;
      s[1] += r.samples;
      sums.set(k, s);
    }
  }
  const out: Record<string, number> = {};
  for (const [k, [s, w]] of sums) out[k] = s / w;
  return out;
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
}

export interface Reduced {
  delta: Float32Array;
  /** The delta is delta / divisor (1: as it is). */
  divisor: number;
  included: string[];
  metrics: Record<string, number>;
}

/** A noise seed as RoundConfig carries it: null, a u32 in decimal, or lower-case hex with 0x. */
function parseNoiseSeed(seed: unknown): string | null {
  if (seed === null) return null;
  if (typeof seed === 'number' && Number.isInteger(seed) && seed >= 0 && seed <= 0xffffffff)
    return String(seed);
  if (typeof seed === 'string' && /^0x([0-9a-fA-F]{2}){1,64}$/.test(seed)) return seed.toLowerCase();
  return fail(
    'E_ROUND',
    `noiseSeed must be a u32 or a 0x-prefixed hex string of 1..64 bytes, got ${JSON.stringify(seed)}`,
  );
}

/** Round life, update checks and the server step shared by every strategy; subclasses ingest and reduce. */
export abstract class BaseStrategy implements Strategy {
  readonly layout: Layout;
  protected global: Float32Array;
  protected round: number | null = null;
  /** The open round's noise seed (RoundOptions.noiseSeed, validated). */
  protected noiseSeed: string | null = null;
  protected lastRound = -Infinity;
  protected workers: string[] = [];
  protected samples: number[] = [];
  protected norms: number[] = [];
  protected rejected = 0;
  protected clippedCount = 0;
  /** Norms accepted in the previous round (adaptive clipping for streaming rules). */
  protected previousNorms: number[] = [];
  abstract readonly backend: 'wasm' | 'js';

  constructor(
    readonly spec: StrategySpec,
    weights: NamedTensor[],
    protected readonly server: ServerOptimiser,
  ) {
    this.layout = layoutOf(weights);
    for (const t of weights) {
      if (!(t.data instanceof Float32Array)) fail('E_WEIGHTS', `tensor "${t.name}" has no Float32Array data`);
      const bad = firstNonFinite(t.data);
      if (bad >= 0) fail('E_WEIGHTS', `tensor "${t.name}" has a non-finite value at ${bad}`);
    }
    this.global = flatten(this.layout, weights);
  }

  weights(): NamedTensor[] {
    return unflatten(this.layout, this.global);
  }

  /** The clip bound known when the round opens (null: none, or decided at aggregation). */
  protected clipAtOpen(): number | null {
    const clip = this.spec.options.clip;
    if (clip === null) return null;
    if (clip.mode === 'fixed') return clip.norm;
    return this.previousNorms.length > 0 ? clip.multiplier * median(this.previousNorms) : clip.initial;
  }

  configureRound(round: number, fit: Partial<FitConfig> = {}, options: RoundOptions = {}): RoundConfig {
    if (!Number.isSafeInteger(round) || round < 0)
      fail('E_ROUND', `round must be a non-negative integer, got ${round}`);
    if (this.round !== null)
      fail('E_ROUND', `round ${this.round} is still open; aggregate it before configuring round ${round}`);
    if (round <= this.lastRound)
      fail('E_ROUND', `round ${round} is not after the last aggregated round ${this.lastRound}`);
    const noiseSeed = parseNoiseSeed(options.noiseSeed ?? null);
    this.round = round;
    this.noiseSeed = noiseSeed;
    this.workers = [];
    this.samples = [];
    this.norms = [];
    this.rejected = 0;
    this.clippedCount = 0;
    this.openRound();
    const o = this.spec.options;
    return {
      round,
      strategy: this.spec.name,
      maxNorm: o.maxNorm,
      clipNorm: this.roundClip(),
      fedProxMu: o.fedProxMu,
      minUpdates: o.minUpdates,
      fit: { ...DEFAULT_FIT, ...fit, fedProxMu: o.fedProxMu > 0 ? o.fedProxMu : (fit.fedProxMu ?? 0) },
      noiseSeed,
    };
  }

  /** The clip bound workers are told about. */
  protected roundClip(): number | null {
    return this.clipAtOpen();
  }

  /** The checks accept() makes before an update touches the aggregate; its tensors in layout order. */
  private validate(update: ClientUpdate): Float32Array[];
  private validate(update: SparseClientUpdate): SparseTensor[];
  private validate(update: AnyClientUpdate): Float32Array[] | SparseTensor[] {
    if (this.round === null) fail('E_ROUND', 'no round is open; call configureRound first');
    if (typeof update !== 'object' || update === null)
      fail('E_UPDATE_SHAPE', 'an update must be an object {worker, samples, tensors}');
    if (typeof update.worker !== 'string' || update.worker === '')
      fail('E_UPDATE_WORKER', 'an update needs a non-empty worker id');
    if (this.workers.includes(update.worker))
      fail('E_DUPLICATE_UPDATE', `worker ${update.worker} already sent an update in round ${this.round}`);
    if (typeof update.samples !== 'number' || !Number.isFinite(update.samples) || update.samples <= 0) {
      fail('E_UPDATE_SAMPLES', `samples must be a positive finite number, got ${String(update.samples)}`);
    }
    return isSparse(update)
      ? orderSparse(this.layout, update.sparse)
      : orderTensors(this.layout, update.tensors);
  }

  check(update: AnyClientUpdate): AcceptResult {
    try {
      if (isSparse(update))
        return { ok: true, norm: this.sparseNormOf(this.validate(update)), clipped: false };
      const parts = this.validate(update);
      return { ok: true, norm: this.normOf(sumSquaresF32(parts), parts), clipped: false };
    } catch (e) {
      if (!(e instanceof AggregationError)) throw e;
      return { ok: false, code: e.code, reason: e.message };
    }
  }

  accept(update: AnyClientUpdate): AcceptResult {
    try {
      const { norm, clipped } = isSparse(update)
        ? this.ingestSparse(update, this.validate(update))
        : this.ingest(update, this.validate(update));
      this.workers.push(update.worker);
      this.samples.push(update.samples);
      this.norms.push(norm);
      if (clipped) this.clippedCount++;
      return { ok: true, norm, clipped };
    } catch (e) {
      if (!(e instanceof AggregationError)) throw e;
      if (e.code !== 'E_ROUND') this.rejected++;
      return { ok: false, code: e.code, reason: e.message };
    }
  }

  /**
   * The update's L2 norm from a kernel's Σx²: a non-finite sum means a non-finite value (rejected, naming it)
   * or a float32 overflow of finite values (recomputed in float64).
   */
  protected normOf(ss: number, parts: Float32Array[]): number {
    let norm = Math.sqrt(ss);
    if (!Number.isFinite(ss)) {
      let s = 0;
      parts.forEach((p, t) => {
        const bad = firstNonFinite(p);
        if (bad >= 0)
          fail('E_UPDATE_NOT_FINITE', `tensor "${this.layout.specs[t]!.name}" has ${p[bad]} at index ${bad}`);
        for (let i = 0; i < p.length; i++) s += p[i]! * p[i]!;
      });
      norm = Math.sqrt(s);
    }
    return this.bounded(norm);
  }

  /** normOf for a sparse update (its tensors in layout order): the same norm, errors and bound, from its values. */
  protected sparseNormOf(parts: SparseTensor[]): number {
    const ss = sparseSumSquaresF32(parts, this.layout.sizes);
    let norm = Math.sqrt(ss);
    if (!Number.isFinite(ss)) {
      let s = 0;
      parts.forEach((p, t) => {
        const bad = firstNonFinite(p.values);
        if (bad >= 0)
          fail(
            'E_UPDATE_NOT_FINITE',
            `tensor "${this.layout.specs[t]!.name}" has ${p.values[bad]} at index ${p.indices[bad]}`,
          );
        for (let j = 0; j < p.values.length; j++) s += p.values[j]! * p.values[j]!;
      });
      norm = Math.sqrt(s);
    }
    return this.bounded(norm);
  }

  private bounded(norm: number): number {
    const max = this.spec.options.maxNorm;
    if (max !== null && norm > max)
      fail('E_UPDATE_NORM', `update norm ${norm.toPrecision(6)} exceeds the round's bound ${max}`);
    return norm;
  }

  /**
   * Folds in a sparse update (its tensors in layout order). By default it is written dense into inputBuffer() and
   * ingested as one; a rule that can fold the non-zero values alone (the streaming ones) overrides this.
   */
  protected ingestSparse(
    update: SparseClientUpdate,
    parts: SparseTensor[],
  ): { norm: number; clipped: boolean } {
    const flat = this.inputBuffer();
    flat.fill(0);
    parts.forEach((p, t) => {
      const o = this.layout.offsets[t]!;
      for (let j = 0; j < p.indices.length; j++) flat[o + p.indices[j]!] = p.values[j]!;
    });
    const tensors = unflatten(this.layout, flat);
    return this.ingest(
      { worker: update.worker, samples: update.samples, tensors },
      tensors.map((t) => t.data),
    );
  }

  aggregate(): AggregateResult {
    if (this.round === null) fail('E_ROUND', 'no round is open');
    const n = this.workers.length;
    if (n === 0) fail('E_NO_UPDATES', `round ${this.round} has no accepted updates`);
    if (n < this.spec.options.minUpdates) {
      fail(
        'E_NOT_ENOUGH_UPDATES',
        `round ${this.round} has ${n} accepted updates; the strategy needs at least ${this.spec.options.minUpdates}`,
      );
    }
    const { delta, divisor, included, metrics } = this.reduce();
    const dn = this.step(delta, divisor);
    const round = this.round;
    const result: AggregateResult = {
      round,
      weights: unflatten(this.layout, this.global),
      delta: unflatten(this.layout, delta),
      included,
      metrics: {
        round,
        accepted: n,
        rejected: this.rejected,
        samples: this.samples.reduce((a, b) => a + b, 0),
        clipped: this.clippedCount,
        updateNormMedian: median(this.norms),
        updateNormMax: this.norms.reduce((a, b) => Math.max(a, b), 0),
        deltaNorm: Math.sqrt(dn),
        ...metrics,
      },
    };
    this.previousNorms = this.norms;
    this.lastRound = round;
    this.round = null;
    this.closeRound();
    return result;
  }

  evaluate(results: EvaluateResult[]): Record<string, number> {
    return aggregateEvaluate(results);
  }

  protected input: Float32Array | undefined;
  inputBuffer(): Float32Array {
    this.input ??= new Float32Array(this.layout.size);
    return this.input;
  }

  memoryBytes(): number {
    return 4 * this.global.length + this.server.bytes + this.heldBytes() + (this.input?.byteLength ?? 0);
  }

  /** The mean (delta / divisor, in place) and the server step on the weights (in place) in one pass; returns Σdelta². */
  protected step(delta: Float32Array, divisor: number): number {
    this.server.step(this.global, delta, divisor);
    return sumSquaresF32([delta]);
  }

  exportState(): Uint8Array {
    if (this.round !== null) fail('E_ROUND', `round ${this.round} is open; export the state between rounds`);
    return encodeState({
      strategy: this.spec.name,
      lastRound: Number.isFinite(this.lastRound) ? this.lastRound : null,
      previousNorms: this.previousNorms,
      extra: this.extraState(),
      arrays: this.server.state,
    });
  }

  restoreState(bytes: Uint8Array): void {
    if (this.round !== null) fail('E_ROUND', `round ${this.round} is open; restore the state between rounds`);
    const s = decodeState(bytes);
    const arrays = this.server.state;
    if (s.strategy !== this.spec.name)
      fail('E_STATE', `the state is a ${s.strategy} strategy's, this one is ${this.spec.name}`);
    if (s.arrays.length !== arrays.length || s.arrays.some((a, i) => a.length !== arrays[i]!.length))
      fail('E_STATE', `the state's optimiser arrays do not fit this model (${s.arrays.length} arrays)`);
    s.arrays.forEach((a, i) => arrays[i]!.set(a));
    this.lastRound = s.lastRound ?? -Infinity;
    this.previousNorms = s.previousNorms;
    this.loadExtraState(s.extra);
  }

  /** Strategy-specific numbers the state carries (e.g. DP rounds taken). */
  protected extraState(): Record<string, number> {
    return {};
  }
  protected loadExtraState(_extra: Record<string, number>): void {}

  protected abstract openRound(): void;
  protected abstract closeRound(): void;
  /** Validates the update's values and folds it in; throws AggregationError to reject (leaving the aggregate as it was). */
  protected abstract ingest(update: ClientUpdate, parts: Float32Array[]): { norm: number; clipped: boolean };
  /**
   * The round's aggregate as a buffer the strategy owns (the server step overwrites it with delta / divisor, and the
   * result's delta views it), the workers it includes and the rule's metrics.
   */
  protected abstract reduce(): Reduced;
  protected abstract heldBytes(): number;
  abstract dispose(): void;
}
