// WebAssembly SIMD (f32x4) kernels generated at run time: the streaming weighted sum, norms, clipping, Krum distances, and a sorting network per update count for median / trimmed mean.
import { Body, encodeModule, F32, F64, I32, V128, simd, type FunctionDef } from './wasm.ts';
import type { ServerStep, StreamAccumulator, UpdateStore } from './types.ts';
import { DIST_BLOCK, SUMSQ_BLOCK, blockSumsq, sgdStepJs, sortedMeanJs } from './reference.ts';

/** The slice of the WebAssembly JS API used here (the project's lib settings do not declare it; no global is added). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
type WasmModule = object;
interface WasmApi {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => { exports: Record<string, unknown> };
  Memory: new (descriptor: { initial: number; maximum?: number }) => WasmMemory;
}
const WebAssembly = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

const PAGE = 65536;
/** wasm32 addresses 4 GiB; keep a margin for V8's own limit. */
export const WASM_MAX_BYTES = 4 * 1024 * 1024 * 1024 - 16 * PAGE;
/** Floats copied into the kernel's staging area per call (64 KiB, so the copy stays in L2): the defined Σx² block. */
const CHUNK = SUMSQ_BLOCK;

/** The server optimisers with state, as server.ts names them. */
export type OptKind = 'momentum' | 'adam' | 'yogi' | 'adagrad';
/**
 * (d, x, s0, s1, end, q, lr, p1..p5): momentum's state is s0 = v with p1 = beta; the adaptive ones' s0 = m, s1 = v,
 * p1..p5 = beta1, 1 - beta1, beta2, 1 - beta2, tau (all float32).
 */
type OptStep = (...args: number[]) => number;

interface CoreExports {
  axpy_sumsq(out: number, a: number, x: number, end: number, w: number): number;
  /** axpy_sumsq over an empty sum: out[i] = +0 + w·x[i] (a is not read). */
  zaxpy_sumsq(out: number, a: number, x: number, end: number, w: number): number;
  sumsq(x: number, end: number): number;
  scale(x: number, end: number, s: number): void;
  sgd_step(d: number, x: number, end: number, q: number, lr: number): number;
  momentum_step: OptStep;
  adam_step: OptStep;
  yogi_step: OptStep;
  adagrad_step: OptStep;
  dist4(a: number, end: number, b0: number, b1: number, b2: number, b3: number, out: number): void;
}

/**
 * out[i] = a[i] + w·x[i] over [x, end), returning Σx² (f32 lanes, f64 total). Four vectors an iteration with static
 * offsets (one pointer bump per stream per 64 bytes); the caller passes a multiple of 16 floats. With `empty`, a is
 * not read: out[i] = +0 + w·x[i] (the first update of a round writes over the sum instead of adding to zeros).
 */
function axpySumsq(empty = false): FunctionDef {
  const b = new Body([I32, I32, I32, I32, F32]);
  const [out, a, x, end, w] = [0, 1, 2, 3, 4];
  const vw = b.local(V128);
  const acc = [b.local(V128), b.local(V128)];
  const xv = b.local(V128);
  b.get(w).v(simd.f32x4_splat).set(vw);
  b.vZero().set(acc[0]!).vZero().set(acc[1]!);
  b.block().get(x).get(end).i32GeU().brIf(0).loop();
  for (let u = 0; u < 4; u++) {
    const off = 16 * u;
    const ac = acc[u & 1]!;
    b.get(x).vLoad(off).set(xv);
    b.get(out);
    if (empty) b.vZero();
    else b.get(a).vLoad(off);
    b.get(xv).get(vw).v(simd.f32x4_mul).v(simd.f32x4_add).vStore(off);
    b.get(ac).get(xv).get(xv).v(simd.f32x4_mul).v(simd.f32x4_add).set(ac);
  }
  for (const p of [x, a, out]) b.get(p).i32(64).i32Add().set(p);
  b.get(x).get(end).i32LtU().brIf(0).end().end();
  b.get(acc[0]!).get(acc[1]!).v(simd.f32x4_add).set(acc[0]!);
  b.hsumF32x4AsF64(acc[0]!);
  return { name: empty ? 'zaxpy_sumsq' : 'axpy_sumsq', results: [F64], body: b };
}

function sumsq(): FunctionDef {
  const b = new Body([I32, I32]);
  const [x, end] = [0, 1];
  const acc0 = b.local(V128);
  const acc1 = b.local(V128);
  const xv = b.local(V128);
  b.vZero().set(acc0).vZero().set(acc1);
  // Two accumulators over 16 floats an iteration; the caller passes a multiple of 16 floats.
  b.block().get(x).get(end).i32GeU().brIf(0).loop();
  for (let u = 0; u < 4; u++) {
    const ac = u & 1 ? acc1 : acc0;
    b.get(x)
      .vLoad(16 * u)
      .tee(xv)
      .get(xv)
      .v(simd.f32x4_mul)
      .get(ac)
      .v(simd.f32x4_add)
      .set(ac);
  }
  b.get(x).i32(64).i32Add().set(x);
  b.get(x).get(end).i32LtU().brIf(0).end().end();
  b.get(acc0).get(acc1).v(simd.f32x4_add).set(acc0);
  b.hsumF32x4AsF64(acc0);
  return { name: 'sumsq', results: [F64], body: b };
}

/**
 * The mean and the plain server step fused, over [d, end) (a multiple of 16 floats): d[i] <- d[i] / q,
 * x[i] <- x[i] + lr·d[i], returning Σd² of the new d in the lanes of axpy_sumsq.
 */
function sgdStep(): FunctionDef {
  const b = new Body([I32, I32, I32, F32, F32]);
  const [d, x, end, q, lr] = [0, 1, 2, 3, 4];
  const vq = b.local(V128);
  const vlr = b.local(V128);
  const acc = [b.local(V128), b.local(V128)];
  const dv = b.local(V128);
  b.get(q).v(simd.f32x4_splat).set(vq);
  b.get(lr).v(simd.f32x4_splat).set(vlr);
  b.vZero().set(acc[0]!).vZero().set(acc[1]!);
  b.block().get(d).get(end).i32GeU().brIf(0).loop();
  for (let u = 0; u < 4; u++) {
    const off = 16 * u;
    const ac = acc[u & 1]!;
    b.get(d).get(d).vLoad(off).get(vq).v(simd.f32x4_div).tee(dv).vStore(off);
    b.get(ac).get(dv).get(dv).v(simd.f32x4_mul).v(simd.f32x4_add).set(ac);
    b.get(x).get(x).vLoad(off).get(vlr).get(dv).v(simd.f32x4_mul).v(simd.f32x4_add).vStore(off);
  }
  for (const p of [d, x]) b.get(p).i32(64).i32Add().set(p);
  b.get(d).get(end).i32LtU().brIf(0).end().end();
  b.get(acc[0]!).get(acc[1]!).v(simd.f32x4_add).set(acc[0]!);
  b.hsumF32x4AsF64(acc[0]!);
  return { name: 'sgd_step', results: [F64], body: b };
}

/**
 * The mean and a stateful server step fused, over [d, end) (a multiple of 16 floats), the float32 operations of
 * server.ts in the same order: d <- d / q, then momentum (v <- beta·v + d; x <- x + lr·v) or Reddi et al.'s
 * (m <- b1·m + c1·d; v by the variant; x <- x + (lr·m) / (sqrt(v) + tau)); returns Σd² in the lanes of axpy_sumsq.
 */
function optStep(kind: OptKind): FunctionDef {
  const b = new Body([I32, I32, I32, I32, I32, F32, F32, F32, F32, F32, F32, F32]);
  const [d, x, s0, s1, end] = [0, 1, 2, 3, 4];
  const fparams = [5, 6, 7, 8, 9, 10, 11];
  const [vq, vlr, p1, p2, p3, p4, p5] = fparams.map((p) => {
    const l = b.local(V128);
    b.get(p).v(simd.f32x4_splat).set(l);
    return l;
  }) as [number, number, number, number, number, number, number];
  const acc = [b.local(V128), b.local(V128)];
  const dv = b.local(V128);
  const mv = b.local(V128);
  const vv = b.local(V128);
  const t = b.local(V128);
  const one = b.local(V128);
  const minusOne = b.local(V128);
  const zero = b.local(V128);
  b.f32(1).v(simd.f32x4_splat).set(one);
  b.f32(-1).v(simd.f32x4_splat).set(minusOne);
  b.vZero().set(zero);
  b.vZero().set(acc[0]!).vZero().set(acc[1]!);
  b.block().get(d).get(end).i32GeU().brIf(0).loop();
  for (let u = 0; u < 4; u++) {
    const off = 16 * u;
    const ac = acc[u & 1]!;
    b.get(d).get(d).vLoad(off).get(vq).v(simd.f32x4_div).tee(dv).vStore(off);
    b.get(ac).get(dv).get(dv).v(simd.f32x4_mul).v(simd.f32x4_add).set(ac);
    if (kind === 'momentum') {
      // v <- beta·v + d; x <- x + lr·v
      b.get(s0).get(p1).get(s0).vLoad(off).v(simd.f32x4_mul).get(dv).v(simd.f32x4_add).tee(vv).vStore(off);
      b.get(x).get(x).vLoad(off).get(vlr).get(vv).v(simd.f32x4_mul).v(simd.f32x4_add).vStore(off);
      continue;
    }
    // m <- b1·m + c1·d
    b.get(s0).get(p1).get(s0).vLoad(off).v(simd.f32x4_mul);
    b.get(p2).get(dv).v(simd.f32x4_mul).v(simd.f32x4_add).tee(mv).vStore(off);
    // t = d² (the gradient's square)
    b.get(dv).get(dv).v(simd.f32x4_mul).set(t);
    b.get(s1).vLoad(off).set(vv);
    if (kind === 'adam') {
      // v <- b2·v + c2·d²
      b.get(p3).get(vv).v(simd.f32x4_mul).get(p4).get(t).v(simd.f32x4_mul).v(simd.f32x4_add).set(vv);
    } else if (kind === 'yogi') {
      // v <- v - (c2·d²)·sign(v - d²), sign as Math.sign: 1, -1, or the difference itself (±0, NaN)
      b.get(vv);
      b.get(p4).get(t).v(simd.f32x4_mul);
      b.get(one);
      b.get(minusOne);
      b.get(vv).get(t).v(simd.f32x4_sub).tee(t);
      b.get(t).get(zero).v(simd.f32x4_lt);
      b.v(simd.v128_bitselect);
      b.get(t).get(zero).v(simd.f32x4_gt);
      b.v(simd.v128_bitselect);
      b.v(simd.f32x4_mul).v(simd.f32x4_sub).set(vv);
    } else {
      // v <- v + d²
      b.get(vv).get(t).v(simd.f32x4_add).set(vv);
    }
    b.get(s1).get(vv).vStore(off);
    // x <- x + (lr·m) / (sqrt(v) + tau)
    b.get(x).get(x).vLoad(off);
    b.get(vlr).get(mv).v(simd.f32x4_mul);
    b.get(vv).v(simd.f32x4_sqrt).get(p5).v(simd.f32x4_add);
    b.v(simd.f32x4_div).v(simd.f32x4_add).vStore(off);
  }
  for (const p of [d, x, s0, s1]) b.get(p).i32(64).i32Add().set(p);
  b.get(d).get(end).i32LtU().brIf(0).end().end();
  b.get(acc[0]!).get(acc[1]!).v(simd.f32x4_add).set(acc[0]!);
  b.hsumF32x4AsF64(acc[0]!);
  return { name: `${kind}_step`, results: [F64], body: b };
}

function scale(): FunctionDef {
  const b = new Body([I32, I32, F32]);
  const [x, end, s] = [0, 1, 2];
  const vs = b.local(V128);
  b.get(s).v(simd.f32x4_splat).set(vs);
  b.block().get(x).get(end).i32GeU().brIf(0).loop();
  b.get(x).get(x).vLoad().get(vs).v(simd.f32x4_mul).vStore();
  b.get(x).i32(16).i32Add().set(x);
  b.get(x).get(end).i32LtU().brIf(0).end().end();
  return { name: 'scale', results: [], body: b };
}

/** Squared distances from a to four vectors b0..b3 over [a, end), written as four f64 at out. */
function dist4(): FunctionDef {
  const b = new Body([I32, I32, I32, I32, I32, I32, I32]);
  const [a, end, out] = [0, 1, 6];
  const bs = [2, 3, 4, 5];
  const accs = bs.map(() => b.local(V128));
  const av = b.local(V128);
  const d = b.local(V128);
  for (const acc of accs) b.vZero().set(acc);
  b.block().get(a).get(end).i32GeU().brIf(0).loop();
  b.get(a).vLoad().set(av);
  bs.forEach((p, k) => {
    b.get(av).get(p).vLoad().v(simd.f32x4_sub).tee(d).get(d).v(simd.f32x4_mul);
    b.get(accs[k]!).v(simd.f32x4_add).set(accs[k]!);
    b.get(p).i32(16).i32Add().set(p);
  });
  b.get(a).i32(16).i32Add().set(a);
  b.get(a).get(end).i32LtU().brIf(0).end().end();
  accs.forEach((acc, k) => {
    b.get(out);
    b.hsumF32x4AsF64(acc);
    b.f64Store(8 * k);
  });
  return { name: 'dist4', results: [], body: b };
}

let coreModule: WasmModule | undefined;
let simdOk: boolean | undefined;

/** Whether this runtime runs the generated SIMD module (V8 has since Node 16.4). */
export function simdAvailable(): boolean {
  if (simdOk === undefined) {
    try {
      coreModule ??= new WebAssembly.Module(
        encodeModule([
          axpySumsq(),
          axpySumsq(true),
          sumsq(),
          scale(),
          dist4(),
          sgdStep(),
          ...(['momentum', 'adam', 'yogi', 'adagrad'] as const).map(optStep),
        ]),
      );
      simdOk = true;
    } catch {
      simdOk = false;
    }
  }
  return simdOk;
}

function pagesFor(bytes: number): number {
  return Math.ceil(bytes / PAGE);
}

/** A wasm linear memory that grows on demand, with a Float32Array view refreshed after each growth. */
class Heap {
  readonly memory: WasmMemory;
  private view: Float32Array;
  constructor(bytes: number) {
    this.memory = new WebAssembly.Memory({ initial: Math.max(1, pagesFor(bytes)) });
    this.view = new Float32Array(this.memory.buffer);
  }
  ensure(bytes: number): void {
    const have = this.memory.buffer.byteLength;
    if (bytes > have) this.memory.grow(pagesFor(bytes - have));
  }
  get f32(): Float32Array {
    if (this.view.buffer !== this.memory.buffer) this.view = new Float32Array(this.memory.buffer);
    return this.view;
  }
  get bytes(): number {
    return this.memory.buffer.byteLength;
  }
}

function instantiate(heap: Heap): CoreExports {
  if (!simdAvailable()) throw new Error('WebAssembly SIMD is not available');
  return new WebAssembly.Instance(coreModule!, { env: { memory: heap.memory } })
    .exports as unknown as CoreExports;
}

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

/** Batcher's odd-even merge sort for any n: the network for the next power of two, minus comparators touching padding. */
export function sortingNetwork(n: number): [number, number][] {
  const pairs: [number, number][] = [];
  let size = 1;
  while (size < n) size <<= 1;
  for (let p = 1; p < size; p <<= 1) {
    for (let k = p; k >= 1; k >>= 1) {
      for (let j = k % p; j + k < size; j += 2 * k) {
        for (let i = 0; i < k && i + j + k < size; i++) {
          if (Math.floor((i + j) / (2 * p)) === Math.floor((i + j + k) / (2 * p)) && i + j + k < n)
            pairs.push([i + j, i + j + k]);
        }
      }
    }
  }
  return pairs;
}

/** The comparators that can influence ranks lo..hi-1; the others are dropped (a partial sort). */
export function pruneNetwork(pairs: [number, number][], lo: number, hi: number): [number, number][] {
  const needed = new Set<number>();
  for (let r = lo; r < hi; r++) needed.add(r);
  const kept: [number, number][] = [];
  for (let c = pairs.length - 1; c >= 0; c--) {
    const [a, b] = pairs[c]!;
    if (needed.has(a) || needed.has(b)) {
      kept.push(pairs[c]!);
      needed.add(a).add(b);
    }
  }
  return kept.reverse();
}

/** Above this many updates the generated network gets long; the store falls back to the JS sort. */
export const MAX_NETWORK_UPDATES = 128;

const robustModules = new Map<string, WasmModule>();

/**
 * robust(p, end): for each 4 coordinates at p (update i at p + i·stride), sort the n values in SIMD lanes with the
 * network and store the mean of ranks lo..hi-1 at p + n·stride.
 */
function robustModule(n: number, stride: number, lo: number, hi: number): WasmModule {
  const key = `${n}/${stride}/${lo}/${hi}`;
  let mod = robustModules.get(key);
  if (mod) return mod;
  const b = new Body([I32, I32]);
  const [p, end] = [0, 1];
  const v = Array.from({ length: n }, () => b.local(V128));
  const t = b.local(V128);
  const inv = b.local(V128);
  b.f32(1 / (hi - lo))
    .v(simd.f32x4_splat)
    .set(inv);
  b.block().get(p).get(end).i32GeU().brIf(0).loop();
  for (let i = 0; i < n; i++)
    b.get(p)
      .vLoad(i * stride)
      .set(v[i]!);
  for (const [i, j] of pruneNetwork(sortingNetwork(n), lo, hi)) {
    b.get(v[i]!).get(v[j]!).v(simd.f32x4_pmin).set(t);
    b.get(v[i]!).get(v[j]!).v(simd.f32x4_pmax).set(v[j]!);
    b.get(t).set(v[i]!);
  }
  // The mean is defined as +0, plus each rank in order, times fround(1/(hi-lo)) (reference.ts: sortedMeanJs).
  b.get(p);
  b.vZero();
  for (let r = lo; r < hi; r++) b.get(v[r]!).v(simd.f32x4_add);
  if (hi - lo > 1) b.get(inv).v(simd.f32x4_mul);
  b.vStore(n * stride);
  b.get(p).i32(16).i32Add().set(p);
  b.get(p).get(end).i32LtU().brIf(0).end().end();
  mod = new WebAssembly.Module(encodeModule([{ name: 'robust', results: [], body: b }]));
  if (robustModules.size > 64) robustModules.clear();
  robustModules.set(key, mod);
  return mod;
}

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
