// The wasm streaming accumulator: a round's weighted sum of updates, and the fused server step, in wasm memory.
import type { ServerStep, StreamAccumulator } from './types.ts';
import { sgdStepJs } from './reference.ts';
import { CHUNK, Heap, instantiate, WASM_MAX_BYTES, type CoreExports } from './simd-runtime.ts';

/**
 * Streams each tensor through a 64 KiB staging area in wasm memory (the copy stays in cache), then one fused SIMD pass
 * reads the sum, adds w·x, writes the spare buffer and accumulates Σx². Memory: two float32 copies of the parameters.
 */
export class WasmStreamAccumulator implements StreamAccumulator {
  readonly backend = 'wasm' as const;
  private readonly heap: Heap;
  private readonly k: CoreExports;
  private readonly staging = 0;
  private sumAt: number;
  private spareAt: number;
  private readonly weightsAt: number;
  private readonly inputAt: number;
  private readonly stride: number;
  /** The input region: in wasm memory when it fits, else a plain array (read through staging). */
  private inputBuffer: Float32Array | undefined;
  /** The weights when they did not fit wasm memory (the step then runs in JS, with the same arithmetic). */
  private jsWeights: Float32Array | undefined;

  /** Where the server optimiser's state arrays live in wasm memory (empty: not reserved). */
  private readonly stateAt: number[];
  private stateHeld = false;

  /**
   * Layout: [staging][sum][spare][weights][state…][input], each region 16-float aligned. The weights and state
   * regions (for the fused server steps) and the input region (an update decoded into wasm memory and read where it
   * is) are reserved, in that order, only when they fit wasm32 memory; the input region's pages are touched only once
   * used. `stateArrays`: how many arrays of the model's size the server optimiser keeps (momentum 1, adaptive 2).
   */
  constructor(
    readonly size: number,
    stateArrays = 0,
  ) {
    const stride = 4 * ((size + 15) & ~15);
    let bytes = 4 * CHUNK + 2 * stride;
    if (bytes > WASM_MAX_BYTES) throw new RangeError(`${size} parameters do not fit wasm32 memory twice`);
    this.stride = stride;
    this.sumAt = 4 * CHUNK;
    this.spareAt = this.sumAt + stride;
    const reserve = (n: number): number => {
      if (bytes + n * stride > WASM_MAX_BYTES) return -1;
      bytes += n * stride;
      return bytes - n * stride;
    };
    this.weightsAt = reserve(1);
    const state = this.weightsAt < 0 || stateArrays === 0 ? -1 : reserve(stateArrays);
    this.stateAt = state < 0 ? [] : Array.from({ length: stateArrays }, (_, i) => state + i * stride);
    this.inputAt = reserve(1);
    this.heap = new Heap(bytes);
    this.k = instantiate(this.heap);
  }
  /** Bytes of the sum, spare, staging and (once used) input; the weights region is counted as the strategy's weights. */
  get bytes(): number {
    // The weights and the optimiser state are counted as the strategy's and the optimiser's.
    const weights = (this.weightsAt < 0 ? 0 : this.stride) + this.stateAt.length * this.stride;
    const reserved = this.inputAt < 0 ? 0 : this.stride;
    const input = this.inputBuffer ? 4 * this.size : 0;
    return this.heap.bytes - weights - reserved + input;
  }
  input(): Float32Array {
    if (!this.inputBuffer) {
      const at = this.inputAt >> 2;
      this.inputBuffer =
        this.inputAt < 0 ? new Float32Array(this.size) : this.heap.f32.subarray(at, at + this.size);
    }
    return this.inputBuffer;
  }
  holdWeights(w: Float32Array): Float32Array {
    if (this.weightsAt < 0) return (this.jsWeights = w);
    const at = this.weightsAt >> 2;
    const v = this.heap.f32.subarray(at, at + this.size);
    v.set(w);
    return v;
  }
  holdState(state: Float32Array[]): Float32Array[] {
    if (this.stateAt.length !== state.length || state.length === 0) return state;
    this.stateHeld = true;
    return state.map((s, i) => {
      const at = this.stateAt[i]! >> 2;
      const v = this.heap.f32.subarray(at, at + this.size);
      v.set(s);
      return v;
    });
  }
  serverStep(server: ServerStep, divisor: number): number | null {
    if (server.kind === 'sgd' || !this.stateHeld || this.jsWeights || this.weightsAt < 0) return null;
    const kernel = this.k[`${server.kind}_step`];
    const heap = this.heap.f32;
    const q = Math.fround(divisor);
    const [lr = 0, p1 = 0, p2 = 0, p3 = 0, p4 = 0, p5 = 0] = server.params;
    const d = this.view();
    const x = heap.subarray(this.weightsAt >> 2, (this.weightsAt >> 2) + this.size);
    const [s0 = 0, s1 = 0] = this.stateAt;
    let dn = 0;
    // Blocks of the defined Σx² over the flat delta: the 16-float head in the kernel, the tail in server.step.
    for (let o = 0; o < this.size; o += CHUNK) {
      const len = Math.min(CHUNK, this.size - o);
      const vec = len & ~15;
      if (vec > 0) {
        const end = this.sumAt + 4 * (o + vec);
        const at = 4 * o;
        dn += kernel(this.sumAt + at, this.weightsAt + at, s0 + at, s1 + at, end, q, lr, p1, p2, p3, p4, p5);
      }
      if (vec < len) {
        server.step(x, d, divisor, o + vec, o + len);
        for (let i = o + vec; i < o + len; i++) dn += d[i]! * d[i]!;
      }
    }
    return dn;
  }
  sgdStep(divisor: number, lr: number): number {
    if (this.jsWeights) return sgdStepJs(this.view(), this.jsWeights, divisor, lr);
    const heap = this.heap.f32;
    const q = Math.fround(divisor);
    const lrf = Math.fround(lr);
    const d = this.view();
    const xAt = this.weightsAt >> 2;
    const dAt = this.sumAt >> 2;
    let dn = 0;
    // Blocks of the defined Σx² over the flat delta: the 16-float head in the kernel, the tail here, the same way.
    for (let o = 0; o < this.size; o += CHUNK) {
      const len = Math.min(CHUNK, this.size - o);
      const vec = len & ~15;
      if (vec > 0) dn += this.k.sgd_step(4 * (dAt + o), 4 * (xAt + o), 4 * (dAt + o + vec), q, lrf);
      for (let i = o + vec; i < o + len; i++) {
        const di = Math.fround(d[i]! / q);
        d[i] = di;
        dn += di * di;
        heap[xAt + i] = heap[xAt + i]! + Math.fround(lrf * di);
      }
    }
    return dn;
  }

  /** No update is in the sum yet (it is +0 everywhere, whatever the buffer holds). */
  private empty = true;

  private pass(
    parts: Float32Array[],
    offsets: number[],
    w: number,
    outAt: number,
    inAt: number,
    write: boolean,
  ): number {
    const heap = this.heap.f32;
    const empty = this.empty;
    const axpy = empty ? this.k.zaxpy_sumsq : this.k.axpy_sumsq;
    const wf = Math.fround(w);
    let ss = 0;
    const memory = heap.buffer;
    for (let t = 0; t < parts.length; t++) {
      const x = parts[t]!;
      const base = offsets[t]!;
      // A tensor already in this memory (decoded into input()) is read where it is; others go through staging.
      const inPlace =
        x.buffer === memory &&
        x.byteOffset >= this.inputAt &&
        x.byteOffset + x.byteLength <= this.inputAt + this.stride;
      for (let o = 0; o < x.length; o += CHUNK) {
        const len = Math.min(CHUNK, x.length - o);
        const chunk = x.subarray(o, o + len);
        const vec = len & ~15;
        let xAt = x.byteOffset + 4 * o;
        if (!inPlace) {
          heap.set(vec === len ? chunk : chunk.subarray(0, vec), this.staging >> 2);
          xAt = this.staging;
        }
        const out = outAt + 4 * (base + o);
        const a = inAt + 4 * (base + o);
        ss += write ? axpy(out, a, xAt, xAt + 4 * vec, wf) : vec > 0 ? this.k.sumsq(xAt, xAt + 4 * vec) : 0;
        // The tail of a block: the same float32 operations in JS, and v·v summed in float64 (reference.ts).
        for (let i = vec; i < len; i++) {
          const v = chunk[i]!;
          if (write) heap[(out >> 2) + i] = (empty ? 0 : heap[(a >> 2) + i]!) + Math.fround(wf * v);
          ss += v * v;
        }
      }
    }
    return ss;
  }
  stage(parts: Float32Array[], offsets: number[], w: number): number {
    return this.pass(parts, offsets, w, this.spareAt, this.sumAt, true);
  }
  commit(): void {
    const t = this.sumAt;
    this.sumAt = this.spareAt;
    this.spareAt = t;
    this.empty = false;
  }
  sumSquares(parts: Float32Array[], offsets: number[]): number {
    return this.pass(parts, offsets, 0, 0, 0, false);
  }
  addInPlace(parts: Float32Array[], offsets: number[], w: number): void {
    this.pass(parts, offsets, w, this.sumAt, this.sumAt, true);
    this.empty = false;
  }
  view(): Float32Array {
    const at = this.sumAt >> 2;
    const v = this.heap.f32.subarray(at, at + this.size);
    if (this.empty) v.fill(0);
    return v;
  }
  read(): Float32Array {
    return this.view().slice();
  }
  reset(): void {
    this.empty = true;
  }
  dispose(): void {}
}
