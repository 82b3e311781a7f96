// Running the generated kernels: the slice of the WebAssembly API used, the core module (the vector and optimiser
// kernels, built once), a linear memory that grows on demand, and an instance over it.
import { encodeModule } from './wasm.ts';
import { SUMSQ_BLOCK } from './reference.ts';
import { optStep, sgdStep } from './simd-opt.ts';
import { axpySumsq, dist4, scale, sumsq } from './simd-sum.ts';

/** The slice of the WebAssembly JS API used here (the project's lib settings do not declare it; no global is added). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
export type WasmModule = object;
interface WasmApi {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => { exports: Record<string, unknown> };
  Memory: new (descriptor: { initial: number; maximum?: number }) => WasmMemory;
}
export const WebAssembly = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

const PAGE = 65536;
/** wasm32 addresses 4 GiB; keep a margin for V8's own limit. */
export const WASM_MAX_BYTES = 4 * 1024 * 1024 * 1024 - 16 * PAGE;
/** Floats copied into the kernel's staging area per call (64 KiB, so the copy stays in L2): the defined Σx² block. */
export const CHUNK = SUMSQ_BLOCK;

/**
 * (d, x, s0, s1, end, q, lr, p1..p5): momentum's state is s0 = v with p1 = beta; the adaptive ones' s0 = m, s1 = v,
 * p1..p5 = beta1, 1 - beta1, beta2, 1 - beta2, tau (all float32).
 */
type OptStep = (...args: number[]) => number;

export interface CoreExports {
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
export class Heap {
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

export function instantiate(heap: Heap): CoreExports {
  if (!simdAvailable()) throw new Error('WebAssembly SIMD is not available');
  return new WebAssembly.Instance(coreModule!, { env: { memory: heap.memory } })
    .exports as unknown as CoreExports;
}
