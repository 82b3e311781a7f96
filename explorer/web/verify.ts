// Download and verification of a checkpoint in the browser, with WebCrypto: the manifest must hash (SHA-256) to the
// id committed on chain, then each chunk to its hash in the manifest — the same rules as checkpoints/download.ts.
// Bytes come through the explorer's relay (sources rarely allow cross-origin reads); the relay is not trusted.

export interface VerifySource {
  index: number;
  name: string;
}

/** One thing that went wrong on the way, named precisely: which object, from which source, and how. */
export interface VerifyFailure {
  /** 'manifest' or the chunk number. */
  what: 'manifest' | number;
  source: string;
  kind: 'corrupt' | 'unavailable';
  detail: string;
}

export interface VerifyProgress {
  chunksDone: number;
  chunksTotal: number;
  bytesDone: number;
  bytesTotal: number;
}

export interface VerifyResult {
  verdict: 'verified' | 'corrupt' | 'unavailable' | 'error';
  message: string;
  failures: VerifyFailure[];
  /** The assembled file when every chunk verified. */
  file: Blob | null;
}

export interface Manifest {
  size: number;
  chunkSize: number;
  chunks: string[];
}

async function sha256Hex(bytes: ArrayBuffer): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return `0x${Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/** The relay's coded error, or the HTTP status. */
async function reason(res: Response): Promise<string> {
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string } };
    if (body.error?.message) return `${body.error.message} [${body.error.code ?? `HTTP ${res.status}`}]`;
  } catch {
    // not JSON: the status says enough
  }
  return `HTTP ${res.status}`;
}

type Fetched = { ok: true; bytes: ArrayBuffer } | { ok: false; detail: string };

async function get(url: string, signal?: AbortSignal): Promise<Fetched> {
  try {
    const res = await fetch(url, { signal, cache: 'no-store' });
    if (!res.ok) return { ok: false, detail: await reason(res) };
    return { ok: true, bytes: await res.arrayBuffer() };
  } catch (error) {
    return { ok: false, detail: `the explorer does not answer (${(error as Error).message})` };
  }
}

function checkManifest(value: unknown): Manifest | string {
  const m = value as Partial<Manifest> | null;
  if (m === null || typeof m !== 'object') return 'not a JSON object';
  if (!Number.isSafeInteger(m.size) || m.size! < 0) return 'bad size';
  if (!Number.isSafeInteger(m.chunkSize) || m.chunkSize! < 1) return 'bad chunkSize';
  if (!Array.isArray(m.chunks) || !m.chunks.every((c) => typeof c === 'string' && /^0x[0-9a-f]{64}$/.test(c)))
    return 'bad chunk list';
  if (m.chunks.length !== Math.ceil(m.size! / m.chunkSize!))
    return `${m.chunks.length} chunks for ${m.size} bytes in chunks of ${m.chunkSize}`;
  return m as Manifest;
}

/**
 * The manifest from the first source whose copy hashes to the on-chain id and is self-consistent; every source
 * that fails is told to `fail`. Null when none serves it.
 */
export async function fetchManifest(
  id: string,
  sources: VerifySource[],
  fail: (f: VerifyFailure) => void,
  signal?: AbortSignal,
): Promise<Manifest | null> {
  for (const source of sources) {
    const got = await get(`api/source/${source.index}/checkpoints/${id}/manifest`, signal);
    if (!got.ok) {
      fail({ what: 'manifest', source: source.name, kind: 'unavailable', detail: got.detail });
      continue;
    }
    const actual = await sha256Hex(got.bytes);
    if (actual !== id) {
      fail({
        what: 'manifest',
        source: source.name,
        kind: 'corrupt',
        detail: `hashes to ${actual}, not to the on-chain id`,
      });
      continue;
    }
    let parsed: Manifest | string;
    try {
      parsed = checkManifest(JSON.parse(new TextDecoder().decode(got.bytes)));
    } catch {
      parsed = 'not JSON';
    }
    if (typeof parsed === 'string') {
      fail({ what: 'manifest', source: source.name, kind: 'corrupt', detail: parsed });
      continue;
    }
    return parsed;
  }
  return null;
}

export async function verifyCheckpoint(params: {
  id: string;
  sources: VerifySource[];
  onProgress?: (p: VerifyProgress) => void;
  onFailure?: (f: VerifyFailure) => void;
  concurrency?: number;
  signal?: AbortSignal;
}): Promise<VerifyResult> {
  const { id, sources, signal } = params;
  const failures: VerifyFailure[] = [];
  const fail = (f: VerifyFailure) => {
    failures.push(f);
    params.onFailure?.(f);
  };
  if (sources.length === 0) {
    return { verdict: 'unavailable', message: `no source is known for ${id}`, failures, file: null };
  }
  if (!globalThis.crypto?.subtle) {
    return {
      verdict: 'error',
      message:
        'this page has no WebCrypto (browsers give it only to secure contexts): open the explorer at http://127.0.0.1 or http://localhost, or serve it over https',
      failures,
      file: null,
    };
  }
  const base = (s: VerifySource) => `api/source/${s.index}/checkpoints/${id}`;

  const manifest = await fetchManifest(id, sources, fail, signal);
  if (manifest === null) {
    const corrupt = failures.some((f) => f.kind === 'corrupt');
    return {
      verdict: corrupt ? 'corrupt' : 'unavailable',
      message: corrupt
        ? `no source served a manifest that hashes to ${id}`
        : `every source is down for ${id}: ${failures.map((f) => `${f.source}: ${f.detail}`).join('; ')}`,
      failures,
      file: null,
    };
  }

  const m = manifest;
  const parts: ArrayBuffer[] = new Array<ArrayBuffer>(m.chunks.length);
  const progress: VerifyProgress = {
    chunksDone: 0,
    chunksTotal: m.chunks.length,
    bytesDone: 0,
    bytesTotal: m.size,
  };
  params.onProgress?.({ ...progress });
  let stopped: VerifyResult | null = null;

  const getChunk = async (n: number) => {
    const expected = m.chunks[n]!;
    const length = Math.min(m.chunkSize, m.size - n * m.chunkSize);
    let corrupt = false;
    for (const source of sources) {
      if (stopped || signal?.aborted) return;
      const got = await get(`${base(source)}/chunks/${n}?hash=${expected}`, signal);
      if (!got.ok) {
        fail({ what: n, source: source.name, kind: 'unavailable', detail: got.detail });
        continue;
      }
      const actual = await sha256Hex(got.bytes);
      if (got.bytes.byteLength !== length || actual !== expected) {
        corrupt = true;
        fail({
          what: n,
          source: source.name,
          kind: 'corrupt',
          detail: `${got.bytes.byteLength} bytes hashing to ${actual}; the manifest says ${length} bytes hashing to ${expected}`,
        });
        continue;
      }
      parts[n] = got.bytes;
      progress.chunksDone++;
      progress.bytesDone += length;
      params.onProgress?.({ ...progress });
      return;
    }
    stopped ??= {
      verdict: corrupt ? 'corrupt' : 'unavailable',
      message: `chunk ${n} ${corrupt ? 'failed verification' : 'could not be fetched'} from every source (${failures
        .filter((f) => f.what === n)
        .map((f) => `${f.source}: ${f.detail}`)
        .join('; ')})`,
      failures,
      file: null,
    };
  };

  let next = 0;
  const pool = Array.from(
    { length: Math.max(1, Math.min(params.concurrency ?? 4, m.chunks.length)) },
    async () => {
      while (next < m.chunks.length && !stopped && !signal?.aborted) await getChunk(next++);
    },
  );
  await Promise.all(pool);
  if (stopped) return stopped;
  if (signal?.aborted) return { verdict: 'error', message: 'stopped', failures, file: null };
  return {
    verdict: 'verified',
    message: `all ${m.chunks.length} chunks (${m.size} bytes) match checkpoint ${id} as committed on chain`,
    failures,
    file: new Blob(parts, { type: 'application/octet-stream' }),
  };
}
