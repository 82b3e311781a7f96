// A strategy's state between rounds as bytes: a JSON header (numbers JSON writes exactly) and the optimiser's float32
// arrays, little-endian. The same state gives the same bytes, so its SHA-256 can be committed with a checkpoint.
import { fail } from './errors.ts';

const MAGIC = 'FTSS1';
/** The most optimiser arrays and norms a state may name (a header is hostile until bounded). */
const MAX_ARRAYS = 8;
const MAX_NORMS = 1 << 20;
const MAX_HEADER = 64 << 20;

export interface StrategyState {
  strategy: string;
  /** The last round aggregated (null: none yet). */
  lastRound: number | null;
  /** The update norms accepted in that round (adaptive clipping reads their median). */
  previousNorms: number[];
  extra: Record<string, number>;
  arrays: readonly Float32Array[];
}

export function encodeState(s: StrategyState): Uint8Array {
  const header = new TextEncoder().encode(
    JSON.stringify({
      strategy: s.strategy,
      lastRound: s.lastRound,
      previousNorms: s.previousNorms,
      extra: Object.fromEntries(Object.entries(s.extra).sort(([a], [b]) => (a < b ? -1 : 1))),
      arrays: s.arrays.map((a) => a.length),
    }),
  );
  // Magic, header length, header, padding to 4 bytes, then the arrays.
  const start = align4(MAGIC.length + 4 + header.length);
  const total = start + s.arrays.reduce((n, a) => n + 4 * a.length, 0);
  const out = new Uint8Array(total);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(MAGIC.length, header.length, true);
  out.set(header, MAGIC.length + 4);
  let offset = start;
  for (const a of s.arrays) {
    const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    if (littleEndian) out.set(bytes, offset);
    else for (let i = 0; i < a.length; i++) new DataView(out.buffer).setFloat32(offset + 4 * i, a[i]!, true);
    offset += a.byteLength;
  }
  return out;
}

export function decodeState(bytes: Uint8Array): StrategyState {
  const bad = (why: string): never => fail('E_STATE', `not a strategy state: ${why}`);
  if (bytes.length < MAGIC.length + 4 || new TextDecoder().decode(bytes.subarray(0, MAGIC.length)) !== MAGIC)
    bad(`it does not start with ${MAGIC}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = view.getUint32(MAGIC.length, true);
  if (length > MAX_HEADER || MAGIC.length + 4 + length > bytes.length) bad(`a header of ${length} bytes`);
  let h: Record<string, unknown>;
  try {
    h = JSON.parse(
      new TextDecoder('utf-8', { fatal: true }).decode(
        bytes.subarray(MAGIC.length + 4, MAGIC.length + 4 + length),
      ),
    ) as Record<string, unknown>;
  } catch {
    return bad('the header is not JSON');
  }
  const finite = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
  if (typeof h.strategy !== 'string') bad('no strategy name');
  if (h.lastRound !== null && !(Number.isSafeInteger(h.lastRound) && (h.lastRound as number) >= 0))
    bad('lastRound');
  if (!Array.isArray(h.previousNorms) || h.previousNorms.length > MAX_NORMS || !h.previousNorms.every(finite))
    bad('previousNorms');
  const extra = h.extra as Record<string, unknown>;
  if (typeof extra !== 'object' || extra === null || !Object.values(extra).every(finite)) bad('extra');
  const lengths = h.arrays as unknown[];
  if (
    !Array.isArray(lengths) ||
    lengths.length > MAX_ARRAYS ||
    !lengths.every((n) => Number.isSafeInteger(n) && (n as number) >= 0)
  )
    bad('arrays');
  let offset = align4(MAGIC.length + 4 + length);
  const need = offset + (lengths as number[]).reduce((n, a) => n + 4 * a, 0);
  if (need !== bytes.length) bad(`${bytes.length} bytes where the header says ${need}`);
  const arrays = (lengths as number[]).map((n) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = view.getFloat32(offset + 4 * i, true);
    offset += 4 * n;
    return a;
  });
  return {
    strategy: h.strategy as string,
    lastRound: h.lastRound as number | null,
    previousNorms: h.previousNorms as number[],
    extra: extra as Record<string, number>,
    arrays,
  };
}

const align4 = (n: number) => (n + 3) & ~3;
const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
