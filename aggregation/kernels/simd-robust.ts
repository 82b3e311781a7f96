// The robust rules' kernels (median, trimmed mean): a sorting network per update count, pruned to the ranks the rule
// averages, generated as one wasm SIMD module per (count, stride, ranks) that sorts four coordinates a lane.
import { Body, encodeModule, I32, V128, simd } from './wasm.ts';
import { WebAssembly, type WasmModule } from './simd-runtime.ts';

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
export function robustModule(n: number, stride: number, lo: number, hi: number): WasmModule {
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
