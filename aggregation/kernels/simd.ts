// WebAssembly SIMD (f32x4) kernels generated at run time: the streaming weighted sum, norms, clipping, Krum distances, and a sorting network per update count for median / trimmed mean.
// The kernels' source lives by family (simd-sum.ts, simd-opt.ts, simd-robust.ts), their runtime in simd-runtime.ts,
// and what the strategies use in simd-stream.ts and simd-store.ts; this module is their one entry.
export { simdAvailable, WASM_MAX_BYTES } from './simd-runtime.ts';
export { type OptKind } from './simd-opt.ts';
export { MAX_NETWORK_UPDATES, pruneNetwork, sortingNetwork } from './simd-robust.ts';
export { WasmStreamAccumulator } from './simd-stream.ts';
export { WasmUpdateStore } from './simd-store.ts';
