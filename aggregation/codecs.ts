// Update codecs a worker sends: dense float32, float16, bfloat16, int8 with a scale per chunk, top-k with error feedback, top-k then int8. Deterministic bytes (the coordinator signs their hash); malformed payloads are coded errors.
import { fail } from './errors.ts';
import { F16_MAX, decodeBf16, decodeF16, encodeBf16, encodeF16 } from './half.ts';
import { seededRng } from './rng.ts';
import { topKIndices } from './select.ts';
import { firstNonFinite, sizeOf, type NamedTensor, type SparseTensor, type TensorSpec } from './tensors.ts';

export const CODECS = ['dense', 'f16', 'bf16', 'int8', 'topk', 'topk-int8'] as const;
export type CodecName = (typeof CODECS)[number];

const MAGIC = [0x46, 0x54, 0x55, 0x50]; // "FTUP"
const VERSION = 1;
const HEADER = 16;
/** Default ceiling on tensors per payload: models have hundreds; each decoded tensor costs an object and a view. */
export const MAX_TENSORS = 65_536;
/** Longest tensor name accepted, in UTF-8 bytes (safetensors names are short paths). */
export const MAX_NAME_BYTES = 1024;
/** Every tensor takes at least this many payload bytes (u16 name length, u8 rank, padding to 4). */
const MIN_TENSOR_BYTES = 4;

/** Residuals a worker keeps across rounds for top-k error feedback: what was not sent yet, per tensor. */
export interface TopKState {
  residual: Map<string, Float32Array>;
}

export function createTopKState(): TopKState {
  return { residual: new Map() };
}

export interface EncodeOptions {
  codec: CodecName;
  /** int8, topk-int8: values per scale (default 256). */
  chunk?: number;
  /** int8, topk-int8: stochastic rounding (unbiased), reproducible from `seed` (required with it). */
  stochastic?: boolean;
  seed?: number;
  /** topk, topk-int8: fraction of each tensor's values sent (default 0.01; at least one per non-empty tensor). */
  fraction?: number;
  /** topk, topk-int8: error-feedback state the worker keeps across rounds; without it, what is not sent is lost. */
  state?: TopKState;
}

export interface DecodeSpec {
  codec: CodecName;
  /** Names and shapes the payload must carry, in this order (the model's spec). */
  expect?: TensorSpec[];
  /** Refuse payloads declaring more values than this (default 2^28), before allocating anything. */
  maxValues?: number;
  /** Refuse payloads declaring more tensors than this (default MAX_TENSORS), before allocating anything. */
  maxTensors?: number;
  /** Decode into this flat buffer (the tensors are consecutive views of it) instead of fresh arrays: a coordinator
   * reuses one per connection, since a streaming strategy has folded an update in by the time accept returns. */
  out?: Float32Array;
}

const CODEC_ID: Record<CodecName, number> = { dense: 0, f16: 1, bf16: 2, int8: 3, topk: 4, 'topk-int8': 5 };

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error('aggregation/codecs assumes a little-endian host');
}

function asBytes(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

type View<T> = new (buffer: ArrayBuffer, byteOffset: number, length: number) => T;

/** A typed array over bytes[off, off + n·width): a view when aligned (payloads are 4-byte aligned), else a copy. */
function copyOut<T>(bytes: Uint8Array, off: number, n: number, width: number, make: View<T>): T {
  if ((bytes.byteOffset + off) % width === 0)
    return new make(bytes.buffer as ArrayBuffer, bytes.byteOffset + off, n);
  const b = new ArrayBuffer(n * width);
  new Uint8Array(b).set(bytes.subarray(off, off + n * width));
  return new make(b, 0, n);
}

const pad4 = (o: number) => (4 - (o & 3)) & 3;

function checkCodec(codec: unknown): CodecName {
  if (typeof codec !== 'string' || !(CODECS as readonly string[]).includes(codec)) {
    fail('E_CODEC_UNKNOWN', `unknown codec ${JSON.stringify(codec)}; expected one of ${CODECS.join(', ')}`);
  }
  return codec as CodecName;
}

/** int8 quantisation of x into q with one scale (max|x| / 127) per chunk; returns the scales. */
function quantise(x: Float32Array, q: Int8Array, chunk: number, rng: (() => number) | null): Float32Array {
  const scales = new Float32Array(Math.ceil(x.length / chunk));
  for (let c = 0; c < scales.length; c++) {
    const from = c * chunk;
    const to = Math.min(x.length, from + chunk);
    let m = 0;
    for (let i = from; i < to; i++) m = Math.max(m, Math.abs(x[i]!));
    const scale = Math.fround(m / 127);
    scales[c] = scale;
    if (scale === 0) continue;
    const inv = 1 / scale;
    for (let i = from; i < to; i++) {
      const v = x[i]! * inv;
      const r = rng ? Math.floor(v + rng()) : Math.round(v);
      q[i] = r > 127 ? 127 : r < -127 ? -127 : r;
    }
  }
  return scales;
}

function dequantise(q: Int8Array, scales: Float32Array, chunk: number, out: Float32Array): void {
  for (let i = 0; i < q.length; i++) out[i] = q[i]! * scales[Math.floor(i / chunk)]!;
}

interface Piece {
  name: Uint8Array;
  shape: number[];
  parts: Uint8Array[];
}

/**
 * Encodes named tensors. Layout (little-endian): "FTUP", u8 version 1, u8 codec id, u8 flags (bit 0: stochastic
 * rounding), u8 0, u32 chunk, u32 tensor count; then per tensor u16 name length, the UTF-8 name, u8 rank, rank x u32
 * dims, zero padding to a multiple of 4 bytes (so payloads decode as views), and the codec's payload (see
 * docs/aggregation.md). Same tensors, options and seed: same bytes.
 * Throws E_CODEC_SPEC for bad options and E_CODEC_INPUT for non-finite values (or beyond float16's range for f16).
 */
export function encodeUpdate(tensors: readonly NamedTensor[], options: EncodeOptions): Uint8Array {
  const codec = checkCodec(options?.codec);
  const chunk = options.chunk ?? 256;
  if (!Number.isInteger(chunk) || chunk < 1 || chunk > 1 << 24)
    fail('E_CODEC_SPEC', `chunk must be an integer in [1, 2^24], got ${chunk}`);
  const fraction = options.fraction ?? 0.01;
  if (!(fraction > 0 && fraction <= 1)) fail('E_CODEC_SPEC', `fraction must be in (0, 1], got ${fraction}`);
  const stochastic = options.stochastic === true;
  if (stochastic && !Number.isInteger(options.seed))
    fail('E_CODEC_SPEC', 'stochastic rounding needs an integer seed so the bytes are reproducible');
  const enc = new TextEncoder();
  const pieces: Piece[] = [];
  tensors.forEach((t, ti) => {
    if (
      typeof t?.name !== 'string' ||
      !(t.data instanceof Float32Array) ||
      !Array.isArray(t.shape) ||
      sizeOf(t.shape) !== t.data.length
    ) {
      fail('E_CODEC_INPUT', `tensor ${ti} must be {name, shape, data: Float32Array of prod(shape) values}`);
    }
    const name = enc.encode(t.name);
    if (name.length > MAX_NAME_BYTES || t.shape.length > 255)
      fail('E_CODEC_INPUT', `tensor "${t.name}" has too long a name or too many dimensions`);
    const bad = firstNonFinite(t.data);
    if (bad >= 0) fail('E_CODEC_INPUT', `tensor "${t.name}" has ${t.data[bad]} at index ${bad}`);
    const x = t.data;
    const rng = stochastic ? seededRng(options.seed!, ti) : null;
    const u = rng ? () => rng.uniform() : null;
    const parts: Uint8Array[] = [];
    switch (codec) {
      case 'dense':
        parts.push(asBytes(x));
        break;
      case 'f16': {
        const beyond = firstBeyond(x, F16_MAX);
        if (beyond >= 0)
          fail(
            'E_CODEC_INPUT',
            `tensor "${t.name}" value ${x[beyond]} at ${beyond} is beyond float16's range`,
          );
        const h = new Uint16Array(x.length);
        encodeF16(x, h);
        parts.push(asBytes(h));
        break;
      }
      case 'bf16': {
        const h = new Uint16Array(x.length);
        encodeBf16(x, h);
        parts.push(asBytes(h));
        break;
      }
      case 'int8': {
        const q = new Int8Array(x.length);
        parts.push(asBytes(quantise(x, q, chunk, u)), asBytes(q));
        break;
      }
      case 'topk':
      case 'topk-int8': {
        // Error feedback: add what earlier rounds did not send, send the largest, keep the rest (and the quantisation error).
        let acc = x;
        const state = options.state;
        if (state) {
          let r = state.residual.get(t.name);
          if (!r || r.length !== x.length) r = new Float32Array(x.length);
          for (let i = 0; i < x.length; i++) r[i] = r[i]! + x[i]!;
          state.residual.set(t.name, r);
          acc = r;
        }
        const k = x.length === 0 ? 0 : Math.min(x.length, Math.max(1, Math.ceil(fraction * x.length)));
        const idx = topKIndices(acc, k);
        const vals = new Float32Array(k);
        for (let j = 0; j < k; j++) vals[j] = acc[idx[j]!]!;
        parts.push(asBytes(new Uint32Array([k])), asBytes(idx));
        let sent = vals;
        if (codec === 'topk-int8') {
          const q = new Int8Array(k);
          const scales = quantise(vals, q, chunk, u);
          parts.push(asBytes(scales), asBytes(q));
          sent = new Float32Array(k);
          dequantise(q, scales, chunk, sent);
        } else {
          parts.push(asBytes(vals));
        }
        if (state) for (let j = 0; j < k; j++) acc[idx[j]!] = acc[idx[j]!]! - sent[j]!;
        break;
      }
    }
    pieces.push({ name, shape: t.shape, parts });
  });
  let size = HEADER;
  for (const p of pieces) {
    size += 2 + p.name.length + 1 + 4 * p.shape.length;
    size += pad4(size) + p.parts.reduce((a, b) => a + b.length, 0);
  }
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  out.set(MAGIC, 0);
  out[4] = VERSION;
  out[5] = CODEC_ID[codec];
  out[6] = stochastic && (codec === 'int8' || codec === 'topk-int8') ? 1 : 0;
  dv.setUint32(8, codec === 'int8' || codec === 'topk-int8' ? chunk : 0, true);
  dv.setUint32(12, pieces.length, true);
  let o = HEADER;
  for (const p of pieces) {
    dv.setUint16(o, p.name.length, true);
    out.set(p.name, o + 2);
    o += 2 + p.name.length;
    out[o++] = p.shape.length;
    for (const d of p.shape) {
      dv.setUint32(o, d, true);
      o += 4;
    }
    o += pad4(o);
    for (const part of p.parts) {
      out.set(part, o);
      o += part.length;
    }
  }
  return out;
}

/** Dense float32 bytes / encoded bytes. */
export function compressionRatio(tensors: readonly NamedTensor[], encoded: Uint8Array): number {
  return (4 * tensors.reduce((a, t) => a + t.data.length, 0)) / encoded.length;
}

/**
 * Decodes bytes from encodeUpdate. Every length, index and scale is checked: a short or long payload, an index out of
 * range or not increasing, a NaN or negative scale, an int8 of -128, a codec or shape other than expected, are
 * AggregationErrors (E_CODEC_MALFORMED, E_CODEC_MISMATCH, E_CODEC_UNKNOWN), never a crash or a silent zero.
 */
export function decodeUpdate(bytes: Uint8Array, spec: DecodeSpec): NamedTensor[] {
  return decodePayload(bytes, spec, false) as NamedTensor[];
}

/** The codecs whose payloads decodeSparseUpdate reads: the ones that send a tensor's largest values only. */
export const SPARSE_CODECS: readonly CodecName[] = ['topk', 'topk-int8'];

/**
 * decodeUpdate for a top-k payload, without the dense arrays: each tensor's indices and values (views of the payload
 * where aligned; topk-int8's dequantised values, the float32 values decodeUpdate would write). The same checks and
 * errors; `maxValues` bounds the tensors' declared sizes as there. E_CODEC_SPEC for a codec that is not top-k.
 */
export function decodeSparseUpdate(bytes: Uint8Array, spec: Omit<DecodeSpec, 'out'>): SparseTensor[] {
  if (!SPARSE_CODECS.includes(checkCodec(spec?.codec)))
    fail(
      'E_CODEC_SPEC',
      `${spec.codec} payloads are dense; decodeSparseUpdate reads ${SPARSE_CODECS.join(', ')}`,
    );
  return decodePayload(bytes, { ...spec, out: undefined }, true) as SparseTensor[];
}

function decodePayload(bytes: Uint8Array, spec: DecodeSpec, sparse: boolean): (NamedTensor | SparseTensor)[] {
  const codec = checkCodec(spec?.codec);
  if (!(bytes instanceof Uint8Array)) fail('E_CODEC_MALFORMED', 'payload must be a Uint8Array');
  const bad = (why: string): never => fail('E_CODEC_MALFORMED', `malformed ${codec} payload: ${why}`);
  if (bytes.length < HEADER) bad(`${bytes.length} bytes is shorter than the ${HEADER}-byte header`);
  if (MAGIC.some((m, i) => bytes[i] !== m)) bad('missing the "FTUP" magic');
  if (bytes[4] !== VERSION) bad(`version ${bytes[4]}, expected ${VERSION}`);
  const id = bytes[5]!;
  const named = (Object.keys(CODEC_ID) as CodecName[]).find((c) => CODEC_ID[c] === id);
  if (named === undefined) fail('E_CODEC_UNKNOWN', `payload names unknown codec id ${id}`);
  if (named !== codec) fail('E_CODEC_MISMATCH', `payload is ${named}, expected ${codec}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const chunk = dv.getUint32(8, true);
  const quantised = codec === 'int8' || codec === 'topk-int8';
  if (quantised ? chunk < 1 : chunk !== 0) bad(`chunk ${chunk}`);
  const count = dv.getUint32(12, true);
  if (spec.expect && count !== spec.expect.length)
    fail('E_CODEC_MISMATCH', `payload has ${count} tensors, expected ${spec.expect.length}`);
  // The count is bounded before the loop allocates per tensor: by the limit, and by what the bytes can hold at all.
  const maxTensors = spec.maxTensors ?? MAX_TENSORS;
  if (count > maxTensors) bad(`declares ${count} tensors; at most ${maxTensors} are accepted`);
  if (count * MIN_TENSOR_BYTES > bytes.length - HEADER)
    bad(`declares ${count} tensors, more than ${bytes.length} bytes can hold`);
  const maxValues = spec.maxValues ?? 2 ** 28;
  let budget = maxValues;
  let used = 0;
  const dec = new TextDecoder('utf-8', { fatal: true });
  const out: (NamedTensor | SparseTensor)[] = [];
  let o = HEADER;
  const need = (n: number, what: string) => {
    if (o + n > bytes.length)
      bad(`${what} needs ${n} bytes at offset ${o}, but the payload ends at ${bytes.length}`);
  };
  for (let t = 0; t < count; t++) {
    need(2, 'a name length');
    const nameLen = dv.getUint16(o, true);
    if (nameLen > MAX_NAME_BYTES) bad(`tensor ${t} name is ${nameLen} bytes; at most ${MAX_NAME_BYTES}`);
    need(2 + nameLen + 1, 'a name');
    let name = '';
    try {
      name = dec.decode(bytes.subarray(o + 2, o + 2 + nameLen));
    } catch {
      bad(`tensor ${t} name is not UTF-8`);
    }
    o += 2 + nameLen;
    const rank = bytes[o++]!;
    need(4 * rank, `tensor "${name}" dims`);
    const shape: number[] = [];
    for (let d = 0; d < rank; d++, o += 4) shape.push(dv.getUint32(o, true));
    const pad = pad4(o);
    need(pad, 'padding');
    for (let i = 0; i < pad; i++) if (bytes[o + i] !== 0) bad(`tensor "${name}" padding is not zero`);
    o += pad;
    const n = sizeOf(shape);
    const want = spec.expect?.[t];
    if (
      want &&
      (want.name !== name || want.shape.length !== rank || want.shape.some((d, i) => d !== shape[i]))
    ) {
      fail(
        'E_CODEC_MISMATCH',
        `tensor ${t} is "${name}" ${JSON.stringify(shape)}, expected "${want.name}" ${JSON.stringify(want.shape)}`,
      );
    }
    if (n > budget) bad(`declares more than ${maxValues} values`);
    budget -= n;
    if (spec.out && used + n > spec.out.length)
      fail('E_CODEC_MISMATCH', `payload has more values than out holds (${spec.out.length})`);
    const start = used;
    const fresh = (): Float32Array => (spec.out ? spec.out.subarray(start, start + n) : new Float32Array(n));
    used += n;
    /** `count` int8 values after their float32 scales, one a chunk of `chunk` values (int8 and topk-int8). */
    const quantised = (count: number): { scales: Float32Array; q: Int8Array } => {
      const nc = Math.ceil(count / chunk);
      need(4 * nc + count, `tensor "${name}" scales and values`);
      const scales = readScales(bytes, o, nc, name, bad);
      o += 4 * nc;
      const q = readInt8(bytes, o, count, name, bad);
      o += count;
      return { scales, q };
    };
    let data!: Float32Array;
    switch (codec) {
      case 'dense':
        need(4 * n, `tensor "${name}" values`);
        data = fresh();
        data.set(copyOut(bytes, o, n, 4, Float32Array));
        o += 4 * n;
        break;
      case 'f16':
      case 'bf16': {
        need(2 * n, `tensor "${name}" values`);
        const h = copyOut(bytes, o, n, 2, Uint16Array);
        o += 2 * n;
        data = fresh();
        if (codec === 'f16') decodeF16(h, data);
        else decodeBf16(h, data);
        break;
      }
      case 'int8': {
        const { scales, q } = quantised(n);
        data = fresh();
        dequantise(q, scales, chunk, data);
        break;
      }
      case 'topk':
      case 'topk-int8': {
        need(4, `tensor "${name}" k`);
        const k = dv.getUint32(o, true);
        o += 4;
        if (k > n) bad(`tensor "${name}" sends ${k} values of ${n}`);
        need(4 * k, `tensor "${name}" indices`);
        const idx = copyOut(bytes, o, k, 4, Uint32Array);
        o += 4 * k;
        for (let j = 0; j < k; j++) {
          if (idx[j]! >= n) bad(`tensor "${name}" index ${idx[j]} is out of range [0, ${n})`);
          if (j > 0 && idx[j]! <= idx[j - 1]!)
            bad(`tensor "${name}" indices are not strictly increasing at ${j}`);
        }
        let values: Float32Array;
        if (codec === 'topk') {
          need(4 * k, `tensor "${name}" values`);
          values = copyOut(bytes, o, k, 4, Float32Array);
          o += 4 * k;
          for (let j = 0; j < k; j++)
            if (!Number.isFinite(values[j]!)) bad(`tensor "${name}" value ${j} is ${values[j]}`);
        } else {
          const { scales, q } = quantised(k);
          values = new Float32Array(k);
          dequantise(q, scales, chunk, values);
        }
        if (sparse) {
          out.push({ name, shape, indices: idx, values });
          continue;
        }
        data = fresh();
        if (spec.out) data.fill(0);
        for (let j = 0; j < k; j++) data[idx[j]!] = values[j]!;
        break;
      }
    }
    out.push({ name, shape, data });
  }
  if (o !== bytes.length) bad(`${bytes.length - o} bytes left over after ${count} tensors`);
  return out;
}

function firstBeyond(x: Float32Array, limit: number): number {
  for (let i = 0; i < x.length; i++) if (x[i]! > limit || x[i]! < -limit) return i;
  return -1;
}

function readScales(
  bytes: Uint8Array,
  o: number,
  nc: number,
  name: string,
  bad: (why: string) => never,
): Float32Array {
  const scales = copyOut(bytes, o, nc, 4, Float32Array);
  for (let c = 0; c < nc; c++) {
    const s = scales[c]!;
    if (!(s >= 0) || s === Infinity) bad(`tensor "${name}" scale ${c} is ${s}`);
  }
  return scales;
}

function readInt8(
  bytes: Uint8Array,
  o: number,
  n: number,
  name: string,
  bad: (why: string) => never,
): Int8Array {
  const q = copyOut(bytes, o, n, 1, Int8Array);
  for (let i = 0; i < n; i++)
    if (q[i] === -128) bad(`tensor "${name}" has int8 -128 at ${i} (the range is [-127, 127])`);
  return q;
}
