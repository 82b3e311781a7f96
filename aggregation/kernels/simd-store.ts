// The wasm update store: a round's updates kept one slot each, for the robust rules (sorted means, Krum distances,
// weighted means over a chosen subset).
import type { UpdateStore } from './types.ts';
import { DIST_BLOCK, blockSumsq, sortedMeanJs } from './reference.ts';
import { MAX_NETWORK_UPDATES, robustModule } from './simd-robust.ts';
import { CHUNK, Heap, instantiate, WASM_MAX_BYTES, WebAssembly, type CoreExports } from './simd-runtime.ts';

/**
 * Updates in wasm memory, one slot each (stride rounded up to 16 floats, padding kept zero), so the generated
 * kernels address update i at a constant offset and the 16-float kernels run over whole slots.
 * Layout: [scratch 64 B][slot 0]…[slot n-1][result].
 */
export class WasmUpdateStore implements UpdateStore {
  readonly backend = 'wasm' as const;
  private readonly heap: Heap;
  private readonly k: CoreExports;
  private readonly strideFloats: number;
  private readonly base = 64;
  private n = 0;

  constructor(readonly size: number) {
    this.strideFloats = (size + 15) & ~15;
    this.heap = new Heap(this.base + 4 * this.strideFloats);
    this.k = instantiate(this.heap);
  }
  get count(): number {
    return this.n;
  }
  get bytes(): number {
    return this.heap.bytes;
  }
  private slotAt(i: number): number {
    return this.base + 4 * this.strideFloats * i;
  }
  /** Whether one more slot (and the result row) still fits wasm32 memory. */
  canGrow(): boolean {
    return this.slotAt(this.n + 2) <= WASM_MAX_BYTES;
  }
  stage(parts: Float32Array[], offsets: number[]): number {
    const at = this.slotAt(this.n);
    this.heap.ensure(at + 4 * this.strideFloats);
    const heap = this.heap.f32;
    for (let t = 0; t < parts.length; t++) heap.set(parts[t]!, (at >> 2) + offsets[t]!);
    heap.fill(0, (at >> 2) + this.size, (at >> 2) + this.strideFloats);
    // The defined Σx²: per tensor, per block, the 16-float head in the SIMD kernel and the tail in float64.
    let ss = 0;
    for (let t = 0; t < parts.length; t++) {
      const len = parts[t]!.length;
      const from = (at >> 2) + offsets[t]!;
      for (let o = 0; o < len; o += CHUNK) {
        const blk = Math.min(CHUNK, len - o);
        const vec = blk & ~15;
        if (vec > 0) ss += this.k.sumsq(4 * (from + o), 4 * (from + o + vec));
        if (vec < blk) ss = blockSumsq(ss, heap, from + o + vec, blk - vec);
      }
    }
    return ss;
  }
  commit(): void {
    this.n++;
  }
  scale(i: number, s: number): void {
    const at = this.slotAt(i);
    this.k.scale(at, at + 4 * this.strideFloats, s);
  }
  sortedMean(lo: number, hi: number): Float32Array {
    const n = this.n;
    if (n > MAX_NETWORK_UPDATES) return this.sortedMeanJs(lo, hi);
    const stride = 4 * this.strideFloats;
    const out = this.slotAt(n);
    this.heap.ensure(out + stride);
    const inst = new WebAssembly.Instance(robustModule(n, stride, lo, hi), {
      env: { memory: this.heap.memory },
    });
    (inst.exports.robust as (p: number, end: number) => void)(this.base, this.base + stride);
    return this.heap.f32.slice(out >> 2, (out >> 2) + this.size);
  }
  distances(): Float64Array {
    const n = this.n;
    const d = new Float64Array(n * n);
    const scratch = new Float64Array(this.heap.memory.buffer, 0, 4);
    for (let from = 0; from < this.strideFloats; from += DIST_BLOCK) {
      const len = Math.min(DIST_BLOCK, this.strideFloats - from);
      for (let i = 0; i < n; i++) {
        const a = this.slotAt(i) + 4 * from;
        for (let j = i + 1; j < n; j += 4) {
          const b = [0, 1, 2, 3].map((q) => (j + q < n ? this.slotAt(j + q) + 4 * from : a));
          this.k.dist4(a, a + 4 * len, b[0]!, b[1]!, b[2]!, b[3]!, 0);
          for (let q = 0; q < 4 && j + q < n; q++) d[i * n + j + q] = d[i * n + j + q]! + scratch[q]!;
        }
      }
    }
    for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) d[i * n + j] = d[j * n + i]!;
    return d;
  }
  weightedMean(indices: number[], weights: number[]): Float32Array {
    const out = this.slotAt(this.n);
    const stride = 4 * this.strideFloats;
    this.heap.ensure(out + stride);
    this.heap.f32.fill(0, out >> 2, (out >> 2) + this.strideFloats);
    const total = weights.reduce((s, w) => s + w, 0);
    // out = +0, then out += fround(w_k / total)·x_k in the given order (the f32 parameter rounds the weight).
    indices.forEach((i, k) =>
      this.k.axpy_sumsq(out, out, this.slotAt(i), this.slotAt(i) + stride, weights[k]! / total),
    );
    return this.heap.f32.slice(out >> 2, (out >> 2) + this.size);
  }
  /** A copy of stored update i. */
  read(i: number): Float32Array {
    const at = this.slotAt(i) >> 2;
    return this.heap.f32.slice(at, at + this.size);
  }
  /** The per-coordinate JS sort, for update counts beyond the generated networks. */
  private sortedMeanJs(lo: number, hi: number): Float32Array {
    const heap = this.heap.f32;
    const at = Array.from({ length: this.n }, (_, i) => this.slotAt(i) >> 2);
    return sortedMeanJs(this.size, this.n, (i, j) => heap[at[i]! + j]!, lo, hi, new Float32Array(this.size));
  }
  reset(): void {
    this.n = 0;
  }
  dispose(): void {
    this.n = 0;
  }
}
