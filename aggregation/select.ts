// Exact, deterministic top-k by magnitude: a two-pass radix select on the float bits of |x| (monotone in magnitude), then indices in increasing order.

/**
 * Indices of the k largest |x| in increasing index order; ties at the threshold go to the lowest indices.
 * O(n) with two 65536-bucket histograms; x must be finite.
 */
export function topKIndices(x: Float32Array, k: number): Uint32Array {
  const n = x.length;
  if (k >= n) return Uint32Array.from({ length: n }, (_, i) => i);
  const out = new Uint32Array(k);
  if (k <= 0) return out;
  const bits = new Uint32Array(x.buffer, x.byteOffset, n);
  const hist = new Uint32Array(65536);
  for (let i = 0; i < n; i++) hist[(bits[i]! & 0x7fffffff) >>> 16]!++;
  // The bucket (high 16 bits) holding the k-th largest, and how many lie strictly above it.
  let above = 0;
  let hi = 65535;
  while (above + hist[hi]! < k) above += hist[hi--]!;
  hist.fill(0);
  for (let i = 0; i < n; i++) {
    const b = bits[i]! & 0x7fffffff;
    if (b >>> 16 === hi) hist[b & 0xffff]!++;
  }
  let lo = 65535;
  while (above + hist[lo]! < k) above += hist[lo--]!;
  const threshold = ((hi << 16) | lo) >>> 0;
  // `above` values beat the threshold strictly; k - above of the values equal to it are taken, lowest index first.
  let ties = k - above;
  let j = 0;
  for (let i = 0; i < n && j < k; i++) {
    const b = (bits[i]! & 0x7fffffff) >>> 0;
    if (b > threshold || (b === threshold && ties-- > 0)) out[j++] = i;
  }
  return out;
}
