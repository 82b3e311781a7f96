// Named tensors (structurally the model's NamedTensors), the flat layout the aggregators work in, and update validation.
import { AggregationError, fail } from './errors.ts';

/** One named tensor; an update or the model's weights is an ordered list of these. */
export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/**
 * A tensor sent as its non-zero part (a top-k update): strictly increasing indices into the tensor's flat data and the
 * values there; every other value is 0.
 */
export interface SparseTensor {
  name: string;
  shape: number[];
  indices: Uint32Array;
  values: Float32Array;
}

export interface TensorSpec {
  name: string;
  shape: number[];
}

/** Where each named tensor lives in one flat Float32Array of all parameters, in the model's order. */
export interface Layout {
  specs: TensorSpec[];
  offsets: number[];
  sizes: number[];
  /** Total parameter count. */
  size: number;
  index: Map<string, number>;
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function validShape(shape: unknown): shape is number[] {
  return Array.isArray(shape) && shape.every((d) => Number.isInteger(d) && d >= 0 && d <= 0x7fffffff);
}

/** Builds the layout of a model's weights; throws E_WEIGHTS on duplicate names or inconsistent shapes. */
export function layoutOf(tensors: readonly (TensorSpec & { data?: Float32Array })[]): Layout {
  if (!Array.isArray(tensors) || tensors.length === 0)
    fail('E_WEIGHTS', 'weights must be a non-empty list of named tensors');
  const specs: TensorSpec[] = [];
  const offsets: number[] = [];
  const sizes: number[] = [];
  const index = new Map<string, number>();
  let size = 0;
  for (const t of tensors) {
    if (typeof t.name !== 'string' || t.name === '')
      fail('E_WEIGHTS', 'every tensor needs a non-empty string name');
    if (index.has(t.name)) fail('E_WEIGHTS', `duplicate tensor name "${t.name}"`);
    if (!validShape(t.shape))
      fail('E_WEIGHTS', `tensor "${t.name}" has an invalid shape ${JSON.stringify(t.shape)}`);
    const n = sizeOf(t.shape);
    if (t.data !== undefined && (!(t.data instanceof Float32Array) || t.data.length !== n)) {
      fail(
        'E_WEIGHTS',
        `tensor "${t.name}" must carry a Float32Array of ${n} values (shape ${JSON.stringify(t.shape)})`,
      );
    }
    index.set(t.name, specs.length);
    specs.push({ name: t.name, shape: [...t.shape] });
    offsets.push(size);
    sizes.push(n);
    size += n;
  }
  return { specs, offsets, sizes, size, index };
}

/** Concatenates tensors (in layout order) into one flat array. */
export function flatten(layout: Layout, tensors: readonly NamedTensor[]): Float32Array {
  const out = new Float32Array(layout.size);
  const ordered = orderTensors(layout, tensors);
  for (let i = 0; i < ordered.length; i++) out.set(ordered[i]!, layout.offsets[i]!);
  return out;
}

/** Named views over a flat array (no copy). */
export function unflatten(layout: Layout, flat: Float32Array): NamedTensor[] {
  return layout.specs.map((s, i) => ({
    name: s.name,
    shape: [...s.shape],
    data: flat.subarray(layout.offsets[i]!, layout.offsets[i]! + layout.sizes[i]!),
  }));
}

/**
 * Matches an update's tensors to the layout by name and returns their data in layout order.
 * Throws E_UPDATE_SHAPE naming the first mismatch: missing, extra or duplicate names, wrong shapes, wrong data type or length.
 */
export function orderTensors(layout: Layout, tensors: readonly NamedTensor[]): Float32Array[] {
  return inLayoutOrder(layout, tensors, (t, i) => {
    if (!(t.data instanceof Float32Array) || t.data.length !== layout.sizes[i]) {
      fail('E_UPDATE_SHAPE', `tensor "${t.name}" must carry a Float32Array of ${layout.sizes[i]} values`);
    }
    return t.data;
  });
}

/**
 * orderTensors for a sparse update: the same name and shape checks (E_UPDATE_SHAPE), and indices that are strictly
 * increasing and inside their tensor, one value each.
 */
export function orderSparse(layout: Layout, tensors: readonly SparseTensor[]): SparseTensor[] {
  return inLayoutOrder(layout, tensors, (t, i) => {
    const { indices: idx, values } = t;
    if (!(idx instanceof Uint32Array) || !(values instanceof Float32Array) || idx.length !== values.length)
      fail(
        'E_UPDATE_SHAPE',
        `tensor "${t.name}" must carry a Uint32Array of indices and a Float32Array of as many values`,
      );
    const n = layout.sizes[i]!;
    for (let j = 0; j < idx.length; j++) {
      if (idx[j]! >= n || (j > 0 && idx[j]! <= idx[j - 1]!))
        fail(
          'E_UPDATE_SHAPE',
          `tensor "${t.name}" index ${idx[j]} at ${j} is out of range [0, ${n}) or not increasing`,
        );
    }
    return t;
  });
}

/**
 * The checks both orders share: one tensor per layout entry, each named once and shaped as its spec; `take` checks
 * and returns what a tensor carries, placed at its layout index.
 */
function inLayoutOrder<T extends { name: string; shape: readonly number[] }, R>(
  layout: Layout,
  tensors: readonly T[],
  take: (t: T, index: number) => R,
): R[] {
  if (!Array.isArray(tensors)) fail('E_UPDATE_SHAPE', 'an update must be a list of named tensors');
  if (tensors.length !== layout.specs.length) {
    fail(
      'E_UPDATE_SHAPE',
      `expected ${layout.specs.length} tensors (${names(layout)}), got ${tensors.length}`,
    );
  }
  const out: (R | undefined)[] = new Array(layout.specs.length);
  for (const t of tensors) {
    const i = t && typeof t.name === 'string' ? layout.index.get(t.name) : undefined;
    if (i === undefined)
      fail('E_UPDATE_SHAPE', `unexpected tensor "${String(t?.name)}"; expected ${names(layout)}`);
    if (out[i] !== undefined) fail('E_UPDATE_SHAPE', `tensor "${t.name}" appears twice`);
    const spec = layout.specs[i]!;
    if (
      !Array.isArray(t.shape) ||
      t.shape.length !== spec.shape.length ||
      t.shape.some((d: number, k: number) => d !== spec.shape[k])
    ) {
      fail(
        'E_UPDATE_SHAPE',
        `tensor "${t.name}" has shape ${JSON.stringify(t.shape)}, expected ${JSON.stringify(spec.shape)}`,
      );
    }
    out[i] = take(t, i);
  }
  return out as R[];
}

function names(layout: Layout): string {
  const n = layout.specs.map((s) => `"${s.name}"`);
  return n.length > 6 ? `${n.slice(0, 6).join(', ')}, … (${n.length} in all)` : n.join(', ');
}

/** Finds the first non-finite value, or -1. */
export function firstNonFinite(data: Float32Array): number {
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v - v !== 0) return i;
  }
  return -1;
}

/** Sum of squares in float64 (the reference; kernels may use float32 lanes). */
export function sumSquares(data: Float32Array): number {
  let s = 0;
  for (let i = 0; i < data.length; i++) s += data[i]! * data[i]!;
  return s;
}

export function isAggregationError(e: unknown, code?: string): e is AggregationError {
  return e instanceof AggregationError && (code === undefined || e.code === code);
}
