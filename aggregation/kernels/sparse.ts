// Sparse (top-k) kernels: the defined Σx² and the running sum's w·x for an update given as its non-zero values, with
// the same bytes the dense kernels give for the same update decoded into a params-sized array (reference.ts).
import { SUMSQ_BLOCK, hsum4 } from './reference.ts';

/*
 * Why the bytes are the same: a zero adds nothing. In the dense Σx² a zero puts fround(0·0) = +0 into its float32 lane
 * and +0 into the float64 total, and a lane or total that starts at +0 and only grows by squares is never -0, so
 * adding +0 leaves it as it was; the non-zero values reach the same lanes, in the same order, blocked the same way.
 * In the running sum, sum + fround(w·0) is sum (w > 0, sum never -0), so only the non-zero positions change, each
 * by the same float32 operations.
 */

const f = Math.fround;

/** One tensor's non-zero part: strictly increasing indices into it, and the values there. */
export interface SparsePart {
  indices: Uint32Array;
  values: Float32Array;
}

/**
 * The defined Σx² (reference.ts sumSquaresF32) of an update whose tensors, in layout order, are `parts` with
 * `lengths` values each (all others zero): per block of SUMSQ_BLOCK floats, the multiple-of-16 head in 8 float32
 * lanes (float i to lane i mod 8), lanes l and l + 4 added in float32, the four summed in float64, then the tail's
 * v·v in float64. Blocks without a non-zero value add +0 and are skipped.
 */
export function sparseSumSquaresF32(parts: readonly SparsePart[], lengths: readonly number[]): number {
  let ss = 0;
  const lane = new Float64Array(8);
  for (let t = 0; t < parts.length; t++) {
    const { indices: idx, values: v } = parts[t]!;
    const n = lengths[t]!;
    let j = 0;
    while (j < idx.length) {
      const from = idx[j]! - (idx[j]! % SUMSQ_BLOCK);
      const len = Math.min(SUMSQ_BLOCK, n - from);
      const vecEnd = from + (len & ~15);
      if (idx[j]! < vecEnd) {
        lane.fill(0);
        for (; j < idx.length && idx[j]! < vecEnd; j++) {
          const l = idx[j]! & 7;
          const x = v[j]!;
          lane[l] = f(lane[l]! + f(x * x));
        }
        ss += hsum4(
          f(lane[0]! + lane[4]!),
          f(lane[1]! + lane[5]!),
          f(lane[2]! + lane[6]!),
          f(lane[3]! + lane[7]!),
        );
      }
      for (; j < idx.length && idx[j]! < from + len; j++) ss += v[j]! * v[j]!;
    }
  }
  return ss;
}

/** sum[offsets[t] + i] <- sum[…] + fround(fround(w)·x) at each non-zero x: what a dense pass over the update writes. */
export function scatterAxpyF32(
  sum: Float32Array,
  parts: readonly SparsePart[],
  offsets: readonly number[],
  w: number,
): void {
  const wf = f(w);
  for (let t = 0; t < parts.length; t++) {
    const { indices: idx, values: v } = parts[t]!;
    const o = offsets[t]!;
    for (let j = 0; j < idx.length; j++) {
      const i = o + idx[j]!;
      sum[i] = sum[i]! + f(wf * v[j]!);
    }
  }
}
