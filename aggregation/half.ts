// float32 <-> float16 / bfloat16 bit conversions, round to nearest even, for the f16 and bf16 codecs.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The largest finite float16; values at or beyond 65520 round to infinity. */
export const F16_MAX = 65504;

export function f32ToF16Bits(x: number): number {
  f32[0] = x;
  const u = u32[0]!;
  const sign = (u >>> 16) & 0x8000;
  const a = u & 0x7fffffff;
  if (a >= 0x7f800000) return sign | (a > 0x7f800000 ? 0x7e00 : 0x7c00);
  if (a >= 0x477ff000) return sign | 0x7c00;
  if (a < 0x38800000) {
    // Below 2^-14: a subnormal half, m units of 2^-24, rounded half to even.
    const m = Math.abs(f32[0]!) * 16777216;
    let r = Math.floor(m);
    const d = m - r;
    if (d > 0.5 || (d === 0.5 && r & 1)) r++;
    return sign | r;
  }
  let h = ((((a >>> 23) - 112) << 10) | ((a >>> 13) & 0x3ff)) >>> 0;
  const rem = a & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

let f16Table: Float32Array | undefined;

/** All 65536 float16 values as float32 (256 KiB, built once): decoding is a table lookup. */
export function f16Table32(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    t[h] =
      e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
  }
  f16Table = t;
  return t;
}

export function f32ToBf16Bits(x: number): number {
  f32[0] = x;
  const u = u32[0]!;
  if ((u & 0x7fffffff) > 0x7f800000) return (u >>> 16) | 0x40;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float32 -> float16 bits over whole arrays: the bit manipulation inline on the float's own bits (no per-value call). */
export function encodeF16(x: Float32Array, out: Uint16Array): void {
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  for (let i = 0; i < x.length; i++) {
    const u = bits[i]!;
    const a = u & 0x7fffffff;
    if (a < 0x38800000 || a >= 0x477ff000) {
      out[i] = f32ToF16Bits(x[i]!);
      continue;
    }
    let h = (((a >>> 23) - 112) << 10) | ((a >>> 13) & 0x3ff);
    const rem = a & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
    out[i] = ((u >>> 16) & 0x8000) | h;
  }
}

export function decodeF16(h: Uint16Array, out: Float32Array): void {
  const t = f16Table32();
  for (let i = 0; i < h.length; i++) out[i] = t[h[i]!]!;
}

export function encodeBf16(x: Float32Array, out: Uint16Array): void {
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  for (let i = 0; i < x.length; i++) {
    const u = bits[i]!;
    out[i] = (u & 0x7fffffff) > 0x7f800000 ? (u >>> 16) | 0x40 : (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
  }
}

export function decodeBf16(h: Uint16Array, out: Float32Array): void {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < h.length; i++) bits[i] = h[i]! << 16;
}
