// Plain-JS kernels: the reference the WebAssembly kernels are tested against, and the fallback when a model does not fit wasm32 memory.
import type { StreamAccumulator, UpdateStore } from './types.ts';

export class JsStreamAccumulator implements StreamAccumulator {
  readonly backend = 'js' as const;
  private sum: Float32Array;
  private spare: Float32Array;
  constructor(readonly size: number) {
    this.sum = new Float32Array(size);
    this.spare = new Float32Array(size);
  }
  get bytes(): number {
    return 8 * this.size;
  }
  stage(parts: Float32Array[], offsets: number[], w: number): number {
    const a = this.sum;
    const out = this.spare;
    let ss = 0;
    for (let t = 0; t < parts.length; t++) {
      const x = parts[t]!;
      const o = offsets[t]!;
      for (let i = 0; i < x.length; i++) {
        const v = x[i]!;
        out[o + i] = a[o + i]! + w * v;
        ss += v * v;
      }
    }
    return ss;
  }
  commit(): void {
    const t = this.sum;
    this.sum = this.spare;
    this.spare = t;
  }
  sumSquares(parts: Float32Array[]): number {
    let ss = 0;
    for (const x of parts) for (let i = 0; i < x.length; i++) ss += x[i]! * x[i]!;
    return ss;
  }
  addInPlace(parts: Float32Array[], offsets: number[], w: number): void {
    const a = this.sum;
    for (let t = 0; t < parts.length; t++) {
      const x = parts[t]!;
      const o = offsets[t]!;
      for (let i = 0; i < x.length; i++) a[o + i] = a[o + i]! + w * x[i]!;
    }
  }
  read(): Float32Array {
    return this.sum.slice();
  }
  reset(): void {
    this.sum.fill(0);
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
    let ss = 0;
    for (let t = 0; t < parts.length; t++) {
      const p = parts[t]!;
      x.set(p, offsets[t]!);
      for (let i = 0; i < p.length; i++) ss += p[i]! * p[i]!;
    }
    this.staged = x;
    return ss;
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
    for (let j = 0; j < x.length; j++) x[j] = x[j]! * s;
  }
  sortedMean(lo: number, hi: number): Float32Array {
    const n = this.slots.length;
    const out = new Float32Array(this.size);
    const col = new Float32Array(n);
    for (let j = 0; j < this.size; j++) {
      for (let i = 0; i < n; i++) col[i] = this.slots[i]![j]!;
      col.sort();
      let s = 0;
      for (let r = lo; r < hi; r++) s += col[r]!;
      out[j] = s / (hi - lo);
    }
    return out;
  }
  distances(): Float64Array {
    const n = this.slots.length;
    const d = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let k = i + 1; k < n; k++) {
        const a = this.slots[i]!;
        const b = this.slots[k]!;
        let s = 0;
        for (let j = 0; j < a.length; j++) {
          const t = a[j]! - b[j]!;
          s += t * t;
        }
        d[i * n + k] = s;
        d[k * n + i] = s;
      }
    }
    return d;
  }
  weightedMean(indices: number[], weights: number[]): Float32Array {
    const acc = new Float64Array(this.size);
    let total = 0;
    indices.forEach((i, k) => {
      const x = this.slots[i]!;
      const w = weights[k]!;
      total += w;
      for (let j = 0; j < x.length; j++) acc[j] = acc[j]! + w * x[j]!;
    });
    const out = new Float32Array(this.size);
    for (let j = 0; j < out.length; j++) out[j] = acc[j]! / total;
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
