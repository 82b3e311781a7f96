// Shared test fixtures: weights and updates from flat arrays, a seeded source of values, max-difference helpers.
import type { NamedTensor } from '../../aggregation/index.ts';
import { seededRng } from '../../aggregation/index.ts';

export const SHAPES: { name: string; shape: number[] }[] = [
  { name: 'embed.weight', shape: [7, 5] },
  { name: 'block.0.bias', shape: [3] },
  { name: 'head.weight', shape: [5, 9] },
];

export function tensorsFrom(flat: ArrayLike<number>, shapes = SHAPES): NamedTensor[] {
  let o = 0;
  return shapes.map((s) => {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const data = Float32Array.from({ length: n }, (_, i) => flat[o + i]!);
    o += n;
    return { name: s.name, shape: [...s.shape], data };
  });
}

export function flat(tensors: NamedTensor[]): Float32Array {
  const n = tensors.reduce((a, t) => a + t.data.length, 0);
  const out = new Float32Array(n);
  let o = 0;
  for (const t of tensors) {
    out.set(t.data, o);
    o += t.data.length;
  }
  return out;
}

export const SIZE = SHAPES.reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);

export function randomVector(seed: number, n = SIZE, scale = 1): Float32Array {
  const rng = seededRng(seed, 99);
  const v = new Float32Array(n);
  rng.gaussian(v, scale);
  return v;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export function norm(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}

export const BACKENDS = ['wasm', 'js'] as const;
