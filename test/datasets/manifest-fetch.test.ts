// Reading a registered dataset's manifestUri, which anyone may set: http(s) or local files only, within size and time
// limits (a slow drip is cut off), local files only under the allowed folders, and no byte of the file in any error.
import { mkdtempSync, rmSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { fetchManifest } from '../../datasets/index.ts';

const ROOT = `0x${'ab'.repeat(32)}`;

async function codeOf(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    return { code: (error as { code: string }).code, message: (error as Error).message };
  }
  throw new Error('expected a rejection');
}

describe('datasets: fetching a manifestUri safely', () => {
  let dir: string;
  let server: Server | null = null;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'fedtune-manifest-'))));
  afterEach(async () => {
    rmSync(dir, { recursive: true, force: true });
    server?.closeAllConnections();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    server = null;
  });

  const serve = async (handler: Parameters<typeof createServer>[1]) => {
    server = createServer(handler);
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as { port: number }).port}/manifest.json`;
  };

  it('refuses schemes other than http, https and file with E_MANIFEST_URI', async () => {
    for (const uri of ['ftp://127.0.0.1/m.json', 'data:application/json,{}', 'gopher://x/']) {
      expect((await codeOf(fetchManifest(uri, ROOT))).code, uri).to.equal('E_MANIFEST_URI');
    }
  });

  it('cuts off a server that drips bytes slower than the time limit allows', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const drip = setInterval(() => res.write(' '), 20);
      res.on('close', () => clearInterval(drip));
    });
    const error = await codeOf(fetchManifest(url, ROOT, { timeoutMs: 300 }));
    expect(error.code).to.equal('E_MANIFEST_UNAVAILABLE');
    expect(error.message).to.contain('not complete within 300 ms');
  });

  it('refuses a manifest over the size limit, declared or streamed', async () => {
    const declared = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': String(10_000) });
      res.end(' '.repeat(10_000));
    });
    expect((await codeOf(fetchManifest(declared, ROOT, { maxBytes: 1000 }))).message).to.contain(
      'limit of 1000',
    );
    const big = join(dir, 'big.json');
    writeFileSync(big, ' '.repeat(5000));
    expect((await codeOf(fetchManifest(big, ROOT, { maxBytes: 1000 }))).code).to.equal(
      'E_MANIFEST_UNAVAILABLE',
    );
  });

  it('reads local files only under the allowed folders, symbolic links resolved', async () => {
    const allowed = join(dir, 'data');
    mkdirSync(allowed);
    const outside = join(dir, 'secret.json');
    writeFileSync(outside, '{"secret":1}');
    writeFileSync(join(allowed, 'm.json'), '{}');
    symlinkSync(outside, join(allowed, 'link.json'));
    const opts = { localRoots: [allowed] };
    expect((await codeOf(fetchManifest(outside, ROOT, opts))).code).to.equal('E_MANIFEST_URI');
    expect((await codeOf(fetchManifest(pathToFileURL(outside).href, ROOT, opts))).code).to.equal(
      'E_MANIFEST_URI',
    );
    expect((await codeOf(fetchManifest(join(allowed, 'link.json'), ROOT, opts))).code).to.equal(
      'E_MANIFEST_URI',
    );
    expect((await codeOf(fetchManifest(join(allowed, '..', 'secret.json'), ROOT, opts))).code).to.equal(
      'E_MANIFEST_URI',
    );
    // Inside: read, and refused only for not being the dataset.
    expect((await codeOf(fetchManifest(join(allowed, 'm.json'), ROOT, opts))).code).to.equal(
      'E_MANIFEST_MISMATCH',
    );
  });

  it('refuses devices and folders instead of reading forever', async () => {
    expect((await codeOf(fetchManifest('/dev/zero', ROOT))).message).to.contain('not a regular file');
    expect((await codeOf(fetchManifest(dir, ROOT))).code).to.equal('E_MANIFEST_UNAVAILABLE');
  });

  it('never quotes the bytes it read in an error (they go on chain in a failRound reason)', async () => {
    const notJson = join(dir, 'passwd');
    writeFileSync(notJson, 'SECRET-TOKEN-123:x:0:0:root\n');
    const fields = join(dir, 'fields.json');
    writeFileSync(fields, JSON.stringify({ format: 'SECRET-TOKEN-123', name: 'SECRET-TOKEN-123' }));
    const url = await serve((_req, res) => res.end('SECRET-TOKEN-123 {'));
    for (const uri of [notJson, fields, url]) {
      const error = await codeOf(fetchManifest(uri, ROOT));
      expect(error.code, uri).to.equal('E_MANIFEST_MISMATCH');
      expect(error.message, uri).to.not.contain('SECRET');
    }
  });
});
