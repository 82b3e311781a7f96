// Random numbers for DP noise and stochastic rounding: a seeded xoshiro128** stream (reproducible tests and deterministic encodings), or the OS's CSPRNG when no seed is given.
import { createHash, randomFillSync } from 'node:crypto';

export interface Rng {
  /** A uniform 32-bit unsigned integer. */
  u32(): number;
  /** Uniform in (0, 1), 53 bits. */
  uniform(): number;
  /** Fills out with independent N(0, std²) samples. */
  gaussian(out: Float32Array | Float64Array, std: number): void;
}

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

function fromU32(next: () => number): Rng {
  const uniform = () => ((next() >>> 5) * 67108864 + (next() >>> 6) + 0.5) / 9007199254740992;
  return {
    u32: next,
    uniform,
    gaussian(out, std) {
      // Box–Muller: two normals per pair of uniforms.
      for (let i = 0; i < out.length; i += 2) {
        const r = std * Math.sqrt(-2 * Math.log(uniform()));
        const t = 2 * Math.PI * uniform();
        out[i] = r * Math.cos(t);
        if (i + 1 < out.length) out[i + 1] = r * Math.sin(t);
      }
    },
  };
}

/** xoshiro128** (Blackman & Vigna) seeded through splitmix32 from (seed, stream): same inputs, same numbers, on every machine. */
export function seededRng(seed: number, stream = 0): Rng {
  const sm = splitmix32((seed >>> 0) ^ Math.imul(stream >>> 0, 0x27d4eb2f));
  return xoshiro128(new Uint32Array([sm(), sm(), sm(), sm()]));
}

/**
 * xoshiro128** whose 128-bit state is the first 16 bytes (four little-endian u32) of SHA-256 over the UTF-8 of `seed`:
 * for seeds wider than 32 bits, such as a round's noiseSeed (a block hash).
 */
export function seededRngFromString(seed: string): Rng {
  const h = createHash('sha256').update(seed, 'utf8').digest();
  return xoshiro128(new Uint32Array([0, 4, 8, 12].map((o) => h.readUInt32LE(o))));
}

function xoshiro128(s: Uint32Array): Rng {
  if ((s[0]! | s[1]! | s[2]! | s[3]!) === 0) s[0] = 1;
  return fromU32(() => {
    const result = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const t = s[1]! << 9;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  });
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** Numbers from the OS's CSPRNG (what DP noise in production should use), buffered 4 KiB at a time. */
export function secureRng(): Rng {
  const buf = new Uint32Array(1024);
  let i = buf.length;
  return fromU32(() => {
    if (i === buf.length) {
      randomFillSync(buf);
      i = 0;
    }
    return buf[i++]!;
  });
}
