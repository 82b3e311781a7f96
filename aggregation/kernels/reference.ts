// Plain-JS kernels: the reference the WebAssembly kernels are tested against, the fallback when a model does not fit wasm32 memory, and the definition of the arithmetic both follow (docs/aggregation.md, "Determinism").
import type { ServerStep, StreamAccumulator, UpdateStore } from './types.ts';

/*
 * Every value both kernels write is defined in float32, one rounding per operation (Math.fround after each step here,
 * the same f32 operation in wasm: the f64 result of one +, -, ×, ÷ or sqrt of float32 operands rounds to the correctly
 * rounded float32, so the two agree bit for bit). Reductions have a fixed order, blocked as the SIMD kernels run:
 * - Σx² of an update: per tensor, per block of SUMSQ_BLOCK floats, the first multiple of 16 floats go to 8 float32
 *   lanes (float i to lane i mod 8, in increasing i), lanes l and l+4 are added in float32, the four results are summed
 *   in float64 (((c0 + c1) + c2) + c3) and added to the running float64 total, then each of the block's remaining
 *   floats adds its v·v to the total, in order.
 * - Krum's squared distances: per block of DIST_BLOCK floats, 4 float32 lanes (float j to lane j mod 4) of (a - b)²,
 *   summed in float64 as above, blocks added in float64 in order.
 * - A running sum starts at +0 and adds fround(fround(w)·x) per update, in the order the updates were accepted.
 */

/** Floats per block of the defined Σx² (and of the wasm staging area: 64 KiB, so a copy stays in L2). */
export const SUMSQ_BLOCK = 16384;
/** Floats per block of Krum's distances (16 updates x 16 KiB stay in L2). */
export const DIST_BLOCK = 4096;

const f = Math.fround;

/** Σx² of one block's multiple-of-16 head [from, from + vec) in 8 float32 lanes, reduced as the SIMD kernel does. */
function lanesSumsq(x: Float32Array, from: number, vec: number): number {
  let s0 = 0,
    s1 = 0,
    s2 = 0,
    s3 = 0,
    s4 = 0,
    s5 = 0,
    s6 = 0,
    s7 = 0;
  const end = from + vec;
  for (let i = from; i < end; i += 8) {
    const v0 = x[i]!,
      v1 = x[i + 1]!,
      v2 = x[i + 2]!,
      v3 = x[i + 3]!;
    const v4 = x[i + 4]!,
      v5 = x[i + 5]!,
      v6 = x[i + 6]!,
      v7 = x[i + 7]!;
    s0 = f(s0 + f(v0 * v0));
    s1 = f(s1 + f(v1 * v1));
    s2 = f(s2 + f(v2 * v2));
    s3 = f(s3 + f(v3 * v3));
    s4 = f(s4 + f(v4 * v4));
    s5 = f(s5 + f(v5 * v5));
    s6 = f(s6 + f(v6 * v6));
    s7 = f(s7 + f(v7 * v7));
  }
  return hsum4(f(s0 + s4), f(s1 + s5), f(s2 + s6), f(s3 + s7));
}

/** The float64 sum of four float32 lanes, in lane order (what the wasm kernels' horizontal sum does). */
export function hsum4(c0: number, c1: number, c2: number, c3: number): number {
  return c0 + c1 + c2 + c3;
}

/** ss plus the Σx² of one block, tensor floats [from, from + len): the lanes' sum, then each tail float's v·v, in float64. */
export function blockSumsq(ss: number, x: Float32Array, from: number, len: number): number {
  const vec = len & ~15;
  if (vec > 0) ss += lanesSumsq(x, from, vec);
  for (let i = from + vec; i < from + len; i++) ss += x[i]! * x[i]!;
  return ss;
}

/** The defined Σx² of an update (its tensors in layout order): NaN or Infinity if a value is not finite or it overflows float32. */
export function sumSquaresF32(parts: readonly Float32Array[]): number {
  let ss = 0;
  for (const x of parts)
    for (let o = 0; o < x.length; o += SUMSQ_BLOCK)
      ss = blockSumsq(ss, x, o, Math.min(SUMSQ_BLOCK, x.length - o));
  return ss;
}

/** The defined squared distance between two vectors of equal length (Krum). */
export function distanceF32(a: Float32Array, b: Float32Array): number {
  let d = 0;
  for (let from = 0; from < a.length; from += DIST_BLOCK) {
    const end = Math.min(a.length, from + DIST_BLOCK);
    const s = [0, 0, 0, 0];
    for (let j = from; j < end; j++) {
      const t = f(a[j]! - b[j]!);
      s[j & 3] = f(s[j & 3]! + f(t * t));
    }
    d += hsum4(s[0]!, s[1]!, s[2]!, s[3]!);
  }
  return d;
}

/** Per coordinate, the float32 mean of ranks lo..hi-1 of the sorted values: +0, plus each in rank order, times fround(1/(hi-lo)). */
export function sortedMeanJs(
  size: number,
  n: number,
  at: (i: number, j: number) => number,
  lo: number,
  hi: number,
  out: Float32Array,
): Float32Array {
  const col = new Float32Array(n);
  const inv = f(1 / (hi - lo));
  for (let j = 0; j < size; j++) {
    for (let i = 0; i < n; i++) col[i] = at(i, j);
    col.sort();
    let s = 0;
    for (let r = lo; r < hi; r++) s = f(s + col[r]!);
    out[j] = hi - lo > 1 ? f(s * inv) : s;
  }
  return out;
}

/** FedAvg's mean and step (StreamAccumulator.sgdStep) in JS: d <- fround(d / fround(divisor)), x <- x + fround(fround(lr)·d); returns the defined Σd². */
export function sgdStepJs(d: Float32Array, x: Float32Array, divisor: number, lr: number): number {
  const q = f(divisor);
  const lrf = f(lr);
  for (let i = 0; i < x.length; i++) {
    const di = f(d[i]! / q);
    d[i] = di;
    x[i] = x[i]! + f(lrf * di);
  }
  return sumSquaresF32([d]);
}

export class JsStreamAccumulator implements StreamAccumulator {
  readonly backend = 'js' as const;
  private sum: Float32Array;
  private spare: Float32Array;
  /** No update is in the sum yet (it is +0 everywhere, whatever the buffer holds). */
  private empty = true;
  private weights: Float32Array = new Float32Array(0);
  constructor(readonly size: number) {
    this.sum = new Float32Array(size);
    this.spare = new Float32Array(size);
  }
  get bytes(): number {
    return 8 * this.size + (this.inputBuffer?.byteLength ?? 0);
  }
  holdWeights(w: Float32Array): Float32Array {
    this.weights = w;
    return w;
  }
  private inputBuffer: Float32Array | undefined;
  input(): Float32Array {
    this.inputBuffer ??= new Float32Array(this.size);
    return this.inputBuffer;
  }
  sgdStep(divisor: number, lr: number): number {
    return sgdStepJs(this.view(), this.weights, divisor, lr);
  }
  holdState(state: Float32Array[]): Float32Array[] {
    return state;
  }
  serverStep(_server: ServerStep, _divisor: number): number | null {
    return null;
  }
  private axpy(out: Float32Array, parts: Float32Array[], offsets: number[], w: number): void {
    const wf = f(w);
    const a = this.sum;
    for (let t = 0; t < parts.length; t++) {
      const x = parts[t]!;
      const o = offsets[t]!;
      if (this.empty) for (let i = 0; i < x.length; i++) out[o + i] = 0 + f(wf * x[i]!);
      else for (let i = 0; i < x.length; i++) out[o + i] = a[o + i]! + f(wf * x[i]!);
    }
  }
  stage(parts: Float32Array[], offsets: number[], w: number): number {
    this.axpy(this.spare, parts, offsets, w);
    return sumSquaresF32(parts);
  }
  commit(): void {
    const t = this.sum;
    this.sum = this.spare;
    this.spare = t;
    this.empty = false;
  }
  sumSquares(parts: Float32Array[]): number {
    return sumSquaresF32(parts);
  }
  addInPlace(parts: Float32Array[], offsets: number[], w: number): void {
    this.axpy(this.sum, parts, offsets, w);
    this.empty = false;
  }
  view(): Float32Array {
    if (this.empty) this.sum.fill(0);
    return this.sum;
  }
  read(): Float32Array {
    return this.view().slice();
  }
  reset(): void {
    this.empty = true;
  }
  dispose(): void {
    this.sum = new Float32Array(0);
    this.spare = new Float32Array(0);
  }
}

export class JsUpdateStore implements UpdateStore {
  readonly backend = 'js' as const;
  private slots: Float32Array[] = [];
  private staged: Float32Array | undefined;
  constructor(readonly size: number) {}
  get count(): number {
    return this.slots.length;
  }
  get bytes(): number {
    return 4 * this.size * this.slots.length;
  }
  /** The committed slots, for building a store from another's contents. */
  get updates(): readonly Float32Array[] {
    return this.slots;
  }
  stage(parts: Float32Array[], offsets: number[]): number {
    const x = new Float32Array(this.size);
    for (let t = 0; t < parts.length; t++) x.set(parts[t]!, offsets[t]!);
    this.staged = x;
    return sumSquaresF32(parts);
  }
  push(x: Float32Array): void {
    this.slots.push(x);
  }
  commit(): void {
    if (this.staged) this.slots.push(this.staged);
    this.staged = undefined;
  }
  scale(i: number, s: number): void {
    const x = this.slots[i]!;
    const sf = f(s);
    for (let j = 0; j < x.length; j++) x[j] = x[j]! * sf;
  }
  sortedMean(lo: number, hi: number): Float32Array {
    const slots = this.slots;
    return sortedMeanJs(
      this.size,
      slots.length,
      (i, j) => slots[i]![j]!,
      lo,
      hi,
      new Float32Array(this.size),
    );
  }
  distances(): Float64Array {
    const n = this.slots.length;
    const d = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let k = i + 1; k < n; k++) {
        const s = distanceF32(this.slots[i]!, this.slots[k]!);
        d[i * n + k] = s;
        d[k * n + i] = s;
      }
    }
    return d;
  }
  weightedMean(indices: number[], weights: number[]): Float32Array {
    const out = new Float32Array(this.size);
    const total = weights.reduce((s, w) => s + w, 0);
    indices.forEach((i, k) => {
      const x = this.slots[i]!;
      const w = f(weights[k]! / total);
      for (let j = 0; j < x.length; j++) out[j] = out[j]! + f(w * x[j]!);
    });
    return out;
  }
  reset(): void {
    this.slots = [];
    this.staged = undefined;
  }
  dispose(): void {
    this.reset();
  }
}
