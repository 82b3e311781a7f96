// The checkpoint store end to end: store → serve over HTTP → verified, resumable download → re-verify.
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import {
  canonicalJson,
  checkpointId,
  downloadCheckpoint,
  httpSource,
  openStore,
  parseRange,
  parseSource,
  serveCheckpoints,
  sha256Hex,
  templateSource,
  verifyCheckpointDir,
  type CheckpointServer,
  type CheckpointStore,
} from '../../checkpoints/index.ts';

const CHUNK = 4096;

/** GET with the path sent exactly as given (fetch would normalise `..`). */
function rawGet(base: string, path: string, headers: Record<string, string> = {}) {
  const url = new URL(base);
  return new Promise<{ status: number; body: Buffer; headers: Record<string, unknown> }>(
    (resolve, reject) => {
      const req = request({ host: url.hostname, port: url.port, path, headers }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts), headers: res.headers }),
        );
      });
      req.on('error', reject);
      req.end();
    },
  );
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    expect((error as { code?: string }).code, (error as Error).message).to.equal(code);
    return error as Error;
  }
  throw new Error(`expected an error with code ${code}`);
}

describe('checkpoints: content-addressed store, serving, verified download', () => {
  let dir: string;
  let store: CheckpointStore;
  let server: CheckpointServer;
  let bytes: Uint8Array;
  let id: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fedtune-ckpt-'));
    store = await openStore(join(dir, 'store'));
    bytes = new Uint8Array(randomBytes(CHUNK * 7 + 123));
    ({ id } = await store.put(bytes, {
      model: { kind: 'lm', dModel: 8 },
      round: 1,
      proposal: 0,
      chunkSize: CHUNK,
    }));
    server = await serveCheckpoints({ store });
  });

  afterEach(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('names a checkpoint by the SHA-256 of its canonical manifest, independent of key order', async () => {
    const manifest = (await store.getManifest(id))!;
    expect(manifest.chunks).to.have.length(8);
    expect(checkpointId(manifest)).to.equal(id);
    expect(sha256Hex((await store.getManifestBytes(id))!)).to.equal(id);
    expect(canonicalJson({ b: 1, a: [true, null, 'x'] })).to.equal(
      canonicalJson({ a: [true, null, 'x'], b: 1 }),
    );
    // The same bytes stored again give the same id and no new chunk files.
    const again = await store.put(bytes, {
      model: { dModel: 8, kind: 'lm' },
      round: 1,
      proposal: 0,
      chunkSize: CHUNK,
    });
    expect(again.id).to.equal(id);
    expect(await readdir(join(dir, 'store', 'chunks'))).to.have.length(8);
    expect(await readdir(join(dir, 'store', 'tmp'))).to.have.length(0);
    expect(await store.readCheckpoint(id)).to.deep.equal(bytes);
  });

  it('downloads, verifies every chunk and writes the file; verify re-checks it and catches a flipped byte', async () => {
    const out = join(dir, 'out');
    const seen: number[] = [];
    const result = await downloadCheckpoint({
      id,
      sources: [httpSource(server.url)],
      outDir: out,
      onProgress: (p) => seen.push(p.bytesDone),
    });
    expect(result.chunksFetched).to.equal(8);
    expect(new Uint8Array(await readFile(join(out, 'model.safetensors')))).to.deep.equal(bytes);
    expect(seen.at(-1)).to.equal(bytes.length);
    expect((await readdir(out)).sort()).to.deep.equal(['manifest.json', 'model.safetensors']);
    expect((await verifyCheckpointDir(out, id)).size).to.equal(bytes.length);

    const tampered = new Uint8Array(await readFile(join(out, 'model.safetensors')));
    tampered[CHUNK * 3 + 10]! ^= 1;
    await writeFile(join(out, 'model.safetensors'), tampered);
    const error = await expectCode(verifyCheckpointDir(out, id), 'E_CHUNK_CORRUPT');
    expect(error.message).to.contain('chunk 3');
  });

  it('fails naming the chunk when the server holds a corrupted chunk, and keeps nothing unverified', async () => {
    const manifest = (await store.getManifest(id))!;
    const victim = store.chunkPath(manifest.chunks[5]!);
    const corrupted = new Uint8Array(await readFile(victim));
    corrupted[0]! ^= 0xff;
    await writeFile(victim, corrupted);

    const out = join(dir, 'out');
    const error = await expectCode(
      downloadCheckpoint({ id, sources: [httpSource(server.url)], outDir: out }),
      'E_CHUNK_CORRUPT',
    );
    expect(error.message).to.contain('chunk 5');
    const files = await readdir(out, { recursive: true });
    expect(files.some((f) => String(f).endsWith('model.safetensors'))).to.equal(false);
    expect(files.some((f) => String(f).endsWith('chunk-5'))).to.equal(false);
  });

  it('takes a chunk from the next source when the first serves corrupt bytes', async () => {
    const goodDir = join(dir, 'good');
    const good = await openStore(goodDir);
    await good.put(bytes, { model: { kind: 'lm', dModel: 8 }, round: 1, proposal: 0, chunkSize: CHUNK });
    const goodServer = await serveCheckpoints({ store: good });
    try {
      const manifest = (await store.getManifest(id))!;
      await writeFile(store.chunkPath(manifest.chunks[2]!), new Uint8Array(CHUNK));
      // The second source is addressed through URL templates, as a bucket or gateway would be.
      const mirror = templateSource(
        `${goodServer.url}/checkpoints/{id}/manifest`,
        `${goodServer.url}/checkpoints/{id}/chunks/{n}`,
      );
      const result = await downloadCheckpoint({
        id,
        sources: [httpSource(server.url), mirror],
        outDir: join(dir, 'out'),
      });
      expect(result.chunksFetched).to.equal(8);
      expect(new Uint8Array(await readFile(result.path))).to.deep.equal(bytes);
    } finally {
      await goodServer.close();
    }
  });

  it('downloads from a plain static host holding a copy of the store, as a bucket would', async () => {
    // A bare file server over the store's folders, standing in for an S3-compatible bucket.
    const bucket = createServer((req, res) => {
      const match = /^\/ckpt\/(manifests|chunks)\/([0-9a-f]{64})$/.exec(req.url ?? '');
      if (!match) return void res.writeHead(404).end();
      readFile(join(dir, 'store', match[1]!, match[2]!)).then(
        (body) => res.writeHead(200).end(body),
        () => res.writeHead(404).end(),
      );
    });
    await new Promise<void>((resolve) => bucket.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(bucket.address() as AddressInfo).port}/ckpt`;
    try {
      const source = parseSource(`${base}/manifests/{idhex}|${base}/chunks/{hashhex}`);
      const result = await downloadCheckpoint({ id, sources: [source], outDir: join(dir, 'out') });
      expect(new Uint8Array(await readFile(result.path))).to.deep.equal(bytes);
    } finally {
      bucket.close();
    }
    expect(() => parseSource('ftp://x')).to.throw(/http/);
  });

  it('resumes an interrupted download without fetching verified chunks again', async () => {
    const out = join(dir, 'out');
    const stop = new AbortController();
    let done = 0;
    await downloadCheckpoint({
      id,
      sources: [httpSource(server.url)],
      outDir: out,
      concurrency: 1,
      signal: stop.signal,
      onProgress: () => {
        if (++done === 3) stop.abort();
      },
    }).then(
      () => expect.fail('the interrupted download should not complete'),
      (error: { code?: string; name?: string }) =>
        expect(error.code ?? error.name).to.be.oneOf(['E_ABORTED', 'AbortError']),
    );

    const requested: string[] = [];
    server.server.prependListener('request', (req) => requested.push(req.url ?? ''));
    const result = await downloadCheckpoint({ id, sources: [httpSource(server.url)], outDir: out });
    expect(result.chunksReused).to.equal(3);
    expect(result.chunksFetched).to.equal(5);
    expect(requested.filter((u) => /\/chunks\/[012]$/.test(u))).to.deep.equal([]);
    expect(new Uint8Array(await readFile(result.path))).to.deep.equal(bytes);
  });

  it('refuses a manifest that does not hash to the id', async () => {
    const other = await store.put(new Uint8Array(randomBytes(5000)), { model: null, chunkSize: CHUNK });
    const liar = templateSource(
      `${server.url}/checkpoints/${other.id}/manifest`,
      `${server.url}/checkpoints/{id}/chunks/{n}`,
    );
    const error = await expectCode(
      downloadCheckpoint({ id, sources: [liar], outDir: join(dir, 'out') }),
      'E_MANIFEST_UNAVAILABLE',
    );
    expect(error.message).to.contain('hashes to');
  });

  it('serves byte ranges of the whole file and refuses absurd ones', async () => {
    const range = await rawGet(server.url, `/checkpoints/${id}/file`, {
      range: `bytes=${CHUNK - 5}-${CHUNK + 4}`,
    });
    expect(range.status).to.equal(206);
    expect(new Uint8Array(range.body)).to.deep.equal(bytes.subarray(CHUNK - 5, CHUNK + 5));
    const suffix = await rawGet(server.url, `/checkpoints/${id}/file`, { range: 'bytes=-100' });
    expect(new Uint8Array(suffix.body)).to.deep.equal(bytes.subarray(bytes.length - 100));
    const whole = await rawGet(server.url, `/checkpoints/${id}/file`);
    expect(whole.status).to.equal(200);
    expect(new Uint8Array(whole.body)).to.deep.equal(bytes);

    for (const absurd of [
      `bytes=${bytes.length}-`,
      'bytes=50-10',
      'bytes=0-1,5-9',
      'bytes=-0',
      'bytes=abc',
      `bytes=0-${'9'.repeat(30)}`,
    ]) {
      const res = await rawGet(server.url, `/checkpoints/${id}/file`, { range: absurd });
      expect(res.status, absurd).to.equal(416);
      expect(JSON.parse(res.body.toString()).error.code).to.equal('E_RANGE');
    }
    expect(parseRange('bytes=0-', 10)).to.deep.equal([0, 9]);
    expect(parseRange('bytes=5-100', 10)).to.deep.equal([5, 9]);
  });

  it('refuses path tricks, unknown objects and writes', async () => {
    const paths = [
      '/checkpoints/../../etc/passwd',
      `/checkpoints/${id}/../../../etc/passwd`,
      `/checkpoints/${id}/chunks/..%2F..%2Fmanifests`,
      `/checkpoints/${id}/chunks/-1`,
      `/checkpoints/${id}/chunks/8`,
      `/checkpoints/${id}/chunks/01`,
      `/checkpoints/${id.toUpperCase()}/manifest`,
      `/checkpoints/0x${'0'.repeat(64)}/manifest`,
      '/etc/passwd',
    ];
    for (const path of paths) {
      const res = await rawGet(server.url, path);
      expect(res.status, path).to.equal(404);
    }
    const post = await fetch(`${server.url}/checkpoints/${id}/manifest`, { method: 'POST', body: 'x' });
    expect(post.status).to.equal(405);
    const list = (await (await fetch(`${server.url}/checkpoints`)).json()) as { checkpoints: string[] };
    expect(list.checkpoints).to.deep.equal([id]);
  });
});
