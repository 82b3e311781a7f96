// The two storage shapes the strategies aggregate through: a streaming accumulator (O(params)) and a store of all updates (O(n x params)).

/** A server optimiser as the accumulator's fused step sees it (server.ts). */
export interface ServerStep {
  readonly kind: 'sgd' | 'momentum' | 'adam' | 'yogi' | 'adagrad';
  readonly params: number[];
  step(x: Float32Array, d: Float32Array, divisor: number, from: number, to: number): void;
}

/**
 * A running weighted sum Σ w·x over flat parameter space, double-buffered so a rejected update leaves it untouched.
 * Both implementations follow the arithmetic defined in reference.ts: same updates in the same order, same bytes.
 */
export interface StreamAccumulator {
  readonly backend: 'wasm' | 'js';
  readonly size: number;
  /** Bytes this accumulator holds. */
  readonly bytes: number;
  /** Writes sum + w·x into the spare buffer (the sum itself is untouched); returns Σx² (NaN or Infinity if x is not finite). */
  stage(parts: Float32Array[], offsets: number[], w: number): number;
  /** Makes the staged buffer the sum. */
  commit(): void;
  /** Σx² without touching the sum. */
  sumSquares(parts: Float32Array[], offsets: number[]): number;
  /** sum += w·x in place (only after the update has been validated). */
  addInPlace(parts: Float32Array[], offsets: number[], w: number): void;
  /** The sum itself (no copy): valid until the next stage, commit, addInPlace or reset; the caller may overwrite it. */
  view(): Float32Array;
  /**
   * A flat buffer of the model's size to decode an update into (wasm: in the kernel's memory when it fits, so
   * accepting tensors that view it skips the copy through the staging area). Allocated on first use; the same buffer
   * every call.
   */
  input(): Float32Array;
  /** Keeps the strategy's weights where sgdStep can update them (wasm: copied into its memory); returns the array to use from now on. */
  holdWeights(w: Float32Array): Float32Array;
  /**
   * FedAvg's mean and server step in one pass: sum <- fround(sum / fround(divisor)) in place (the delta), weights <-
   * weights + fround(fround(lr)·delta); returns Σdelta² (the defined blocked Σx² over the flat delta).
   */
  sgdStep(divisor: number, lr: number): number;
  /** Keeps a server optimiser's state arrays where serverStep can update them (wasm: copied into its memory when they fit); returns the arrays to use. */
  holdState(state: Float32Array[]): Float32Array[];
  /**
   * The mean and a stateful server step in one pass (a SIMD kernel doing server.step's float32 operations), or null
   * when the weights or the state are not in this accumulator's memory (the caller then runs server.step).
   */
  serverStep(server: ServerStep, divisor: number): number | null;
  /** A copy of the sum. */
  read(): Float32Array;
  /** Empties the sum (lazily: the next update is written over it, not added to it). */
  reset(): void;
  dispose(): void;
}

/** Every accepted update of a round, for the rules that need them all (median, trimmed mean, Krum). */
export interface UpdateStore {
  readonly backend: 'wasm' | 'js';
  readonly size: number;
  readonly count: number;
  /** Bytes this store holds now. */
  readonly bytes: number;
  /** Copies x into the next free slot (not yet counted); returns Σx² (NaN or Infinity if x is not finite). */
  stage(parts: Float32Array[], offsets: number[]): number;
  /** Counts the staged slot. */
  commit(): void;
  /** Multiplies stored update i by s (clipping). */
  scale(i: number, s: number): void;
  /** Per coordinate, the mean of the sorted values at ranks lo..hi-1 (median: the middle one or two; trimmed mean: drop b each side). */
  sortedMean(lo: number, hi: number): Float32Array;
  /** Row-major count x count squared Euclidean distances. */
  distances(): Float64Array;
  /** Σ w_k x_{i_k} / Σ w_k. */
  weightedMean(indices: number[], weights: number[]): Float32Array;
  reset(): void;
  dispose(): void;
}
