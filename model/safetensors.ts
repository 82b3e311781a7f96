// safetensors I/O (F32, F16, BF16): an 8-byte little-endian header length, a JSON header, raw little-endian data.
import { validateConfig, type ModelConfig } from './config.ts';
import { ModelError } from './errors.ts';
import { createModel, type Model } from './gpt.ts';
import { getWeights, setWeights, type NamedTensors } from './weights.ts';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16';
const BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };
/** The reference implementation refuses headers over 100 MB. */
const MAX_HEADER = 100_000_000;

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1)
  throw new ModelError('E_SAFETENSORS_ENDIAN', 'safetensors I/O needs a little-endian host');

export interface SafetensorsTensor {
  name: string;
  shape: number[];
  /** Always float32 in memory; dtype says how it is (or was) stored. */
  data: Float32Array;
  dtype: SafetensorsDtype;
}

export interface WriteSafetensorsOptions {
  /** Storage type for every tensor (default F32). F16 and BF16 round to nearest even. */
  dtype?: SafetensorsDtype;
}

/** float32 → IEEE half bits, round to nearest even, overflow → ±Inf, NaN kept. */
function toF16(f: number, scratch: Float32Array, bits: Uint32Array): number {
  scratch[0] = f;
  const x = bits[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

function fromF16(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

function encode(data: Float32Array, dtype: SafetensorsDtype): Uint8Array {
  if (dtype === 'F32')
    return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  const out = new Uint16Array(data.length);
  if (dtype === 'BF16') {
    const bits = new Uint32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
    for (let i = 0; i < bits.length; i++) {
      const x = bits[i]!;
      if ((x & 0x7fffffff) > 0x7f800000)
        out[i] = (x >>> 16) | 0x40; // NaN stays NaN
      else out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
    }
  } else {
    const scratch = new Float32Array(1);
    const bits = new Uint32Array(scratch.buffer);
    for (let i = 0; i < data.length; i++) out[i] = toF16(data[i]!, scratch, bits);
  }
  return new Uint8Array(out.buffer);
}

function decode(bytes: Uint8Array, dtype: SafetensorsDtype): Float32Array {
  const copy = bytes.slice().buffer; // aligned
  if (dtype === 'F32') return new Float32Array(copy);
  const half = new Uint16Array(copy);
  if (dtype === 'BF16') {
    const bits = new Uint32Array(half.length);
    for (let i = 0; i < half.length; i++) bits[i] = half[i]! << 16;
    return new Float32Array(bits.buffer);
  }
  return Float32Array.from(half, fromF16);
}

/** Serialises tensors (in the given order) with string metadata; a file any safetensors reader loads. */
export function writeSafetensors(
  tensors: readonly { name: string; shape: number[]; data: Float32Array }[],
  metadata: Record<string, string> = {},
  { dtype = 'F32' }: WriteSafetensorsOptions = {},
): Uint8Array {
  if (!(dtype in BYTES))
    throw new ModelError('E_SAFETENSORS_DTYPE', `cannot write dtype "${dtype}"; expected F32, F16 or BF16`);
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string')
        throw new ModelError('E_SAFETENSORS_METADATA', `metadata "${k}" must be a string`);
    }
    header.__metadata__ = metadata;
  }
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const t of tensors) {
    if (t.name === '__metadata__' || t.name in header)
      throw new ModelError('E_SAFETENSORS_NAME', `duplicate or reserved tensor name "${t.name}"`);
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length)
      throw new ModelError(
        'E_SAFETENSORS_SHAPE',
        `tensor "${t.name}" has ${t.data.length} values for shape [${t.shape}]`,
      );
    const bytes = encode(t.data, dtype);
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    parts.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
  json += ' '.repeat((8 - ((Buffer.byteLength(json) + 8) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Parses and checks a safetensors file; tensors come back in data order, as float32. */
export function readSafetensors(bytes: Uint8Array): {
  tensors: SafetensorsTensor[];
  metadata: Record<string, string>;
} {
  if (bytes.length < 8)
    throw new ModelError(
      'E_SAFETENSORS_TRUNCATED',
      `a safetensors file has at least 8 bytes, got ${bytes.length}`,
    );
  const headerLen = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (headerLen > MAX_HEADER)
    throw new ModelError('E_SAFETENSORS_HEADER', `header length ${headerLen} exceeds ${MAX_HEADER} bytes`);
  if (8 + headerLen > bytes.length) {
    throw new ModelError(
      'E_SAFETENSORS_TRUNCATED',
      `header of ${headerLen} bytes runs past the end of a ${bytes.length}-byte file`,
    );
  }
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen)));
  } catch (err) {
    throw new ModelError('E_SAFETENSORS_HEADER', `the header is not UTF-8 JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw new ModelError('E_SAFETENSORS_HEADER', 'the header must be a JSON object');
  }
  const data = bytes.subarray(8 + headerLen);
  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: SafetensorsDtype; shape: number[]; begin: number; end: number }[] =
    [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw === null || typeof raw !== 'object')
        throw new ModelError('E_SAFETENSORS_METADATA', '__metadata__ must be an object');
      for (const [k, v] of Object.entries(raw)) {
        if (typeof v !== 'string')
          throw new ModelError('E_SAFETENSORS_METADATA', `__metadata__ value "${k}" must be a string`);
        metadata[k] = v;
      }
      continue;
    }
    const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof info !== 'object' || info === null)
      throw new ModelError('E_SAFETENSORS_HEADER', `entry "${name}" must be an object`);
    const dtype = info.dtype as SafetensorsDtype;
    if (typeof dtype !== 'string' || !(dtype in BYTES)) {
      throw new ModelError(
        'E_SAFETENSORS_DTYPE',
        `tensor "${name}" has dtype ${JSON.stringify(info.dtype)}; supported: F32, F16, BF16`,
      );
    }
    const shape = info.shape;
    if (!Array.isArray(shape) || !shape.every((s) => Number.isInteger(s) && s >= 0)) {
      throw new ModelError(
        'E_SAFETENSORS_HEADER',
        `tensor "${name}" has an invalid shape ${JSON.stringify(shape)}`,
      );
    }
    const off = info.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((o) => Number.isInteger(o) && o >= 0)) {
      throw new ModelError(
        'E_SAFETENSORS_OFFSETS',
        `tensor "${name}" has invalid data_offsets ${JSON.stringify(off)}`,
      );
    }
    const [begin, end] = off as [number, number];
    if (begin > end)
      throw new ModelError(
        'E_SAFETENSORS_OFFSETS',
        `tensor "${name}" ends (${end}) before it begins (${begin})`,
      );
    if (end > data.length) {
      throw new ModelError(
        'E_SAFETENSORS_TRUNCATED',
        `tensor "${name}" ends at byte ${end} but the data section has ${data.length} bytes`,
      );
    }
    const expected = (shape as number[]).reduce((a, b) => a * b, 1) * BYTES[dtype];
    if (end - begin !== expected) {
      throw new ModelError(
        'E_SAFETENSORS_SHAPE',
        `tensor "${name}" spans ${end - begin} bytes; shape [${shape}] of ${dtype} needs ${expected}`,
      );
    }
    entries.push({ name, dtype, shape: shape as number[], begin, end });
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  for (const e of entries) {
    if (e.begin < covered)
      throw new ModelError('E_SAFETENSORS_OVERLAP', `tensor "${e.name}" overlaps the tensor before it`);
    if (e.begin > covered)
      throw new ModelError('E_SAFETENSORS_OFFSETS', `bytes ${covered}..${e.begin} belong to no tensor`);
    covered = e.end;
  }
  if (covered !== data.length)
    throw new ModelError(
      'E_SAFETENSORS_OFFSETS',
      `${data.length - covered} trailing bytes belong to no tensor`,
    );
  return {
    tensors: entries.map((e) => ({
      name: e.name,
      shape: e.shape,
      dtype: e.dtype,
      data: decode(data.subarray(e.begin, e.end), e.dtype),
    })),
    metadata,
  };
}

/** The sidecar config (config.json beside model.safetensors) naming the architecture. */
export interface SidecarConfig {
  architecture: 'fedtune-gpt';
  version: 1;
  config: ModelConfig;
}

export function sidecarConfig(config: ModelConfig): SidecarConfig {
  return { architecture: 'fedtune-gpt', version: 1, config: validateConfig(config) };
}

export function parseSidecarConfig(json: unknown): ModelConfig {
  const s = json as Partial<SidecarConfig> | null;
  if (s === null || typeof s !== 'object' || s.architecture !== 'fedtune-gpt' || s.version !== 1) {
    throw new ModelError(
      'E_MODEL_SIDECAR',
      'expected a sidecar config { architecture: "fedtune-gpt", version: 1, config }',
    );
  }
  return validateConfig(s.config as ModelConfig);
}

/** The model's weights as a safetensors file; the sidecar config also rides in __metadata__["fedtune.config"]. */
export function modelToSafetensors(
  model: Model,
  { dtype = 'F32', metadata = {} }: WriteSafetensorsOptions & { metadata?: Record<string, string> } = {},
): Uint8Array {
  const weights: NamedTensors = getWeights(model);
  return writeSafetensors(
    weights,
    { format: 'pt', 'fedtune.config': JSON.stringify(sidecarConfig(model.config)), ...metadata },
    { dtype },
  );
}

/** A model from a safetensors file, its config from the given sidecar or from the file's metadata. */
export function modelFromSafetensors(bytes: Uint8Array, config?: ModelConfig): Model {
  const { tensors, metadata } = readSafetensors(bytes);
  let cfg = config;
  if (cfg === undefined) {
    const raw = metadata['fedtune.config'];
    if (raw === undefined)
      throw new ModelError(
        'E_MODEL_SIDECAR',
        'the file has no fedtune.config metadata; pass the sidecar config',
      );
    cfg = parseSidecarConfig(JSON.parse(raw));
  }
  const model = createModel(cfg);
  try {
    setWeights(
      model,
      tensors.map(({ name, shape, data }) => ({ name, shape, data })),
    );
  } catch (err) {
    for (const v of model.params.values()) v.dispose();
    throw err;
  }
  return model;
}
