// Trainers sharing a machine: concurrent downloads of one checkpoint into one cache folder, and resuming one left by a
// download that stopped, each in its own working folder.
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import {
  downloadCheckpoint,
  httpSource,
  openStore,
  serveCheckpoints,
  verifyCheckpointDir,
  type CheckpointServer,
} from '../../checkpoints/index.ts';

const CHUNK = 4096;

describe('worker cache: concurrent checkpoint downloads', () => {
  let dir: string;
  let server: CheckpointServer;
  let bytes: Uint8Array;
  let id: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fedtune-cache-'));
    const store = await openStore(join(dir, 'store'));
    bytes = new Uint8Array(randomBytes(CHUNK * 40 + 17));
    ({ id } = await store.put(bytes, { model: { kind: 'lm' }, chunkSize: CHUNK }));
    server = await serveCheckpoints({ store });
  });

  afterEach(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('lets several downloads of one checkpoint into one folder all succeed, leaving no working folder', async () => {
    const out = join(dir, 'cache', 'checkpoints', id.slice(2));
    const results = await Promise.all(
      Array.from({ length: 4 }, () =>
        downloadCheckpoint({ id, sources: [httpSource(server.url)], outDir: out, concurrency: 2 }),
      ),
    );
    for (const r of results) expect(r.manifest.size).to.equal(bytes.length);
    expect(new Uint8Array(await readFile(join(out, 'model.safetensors')))).to.deep.equal(bytes);
    await verifyCheckpointDir(out, id);
    expect((await readdir(out)).sort()).to.deep.equal(['manifest.json', 'model.safetensors']);
  });

  it("takes over a working folder left by a process that is gone, and an older fedtune's", async () => {
    const out = join(dir, 'out');
    // A pid that cannot be running: above Linux's pid_max ceiling.
    for (const name of [`.partial-${id.slice(2, 18)}-4194305-deadbeef`, `.partial-${id.slice(2, 18)}`]) {
      await rm(out, { recursive: true, force: true });
      await mkdir(join(out, name), { recursive: true });
      const result = await downloadCheckpoint({ id, sources: [httpSource(server.url)], outDir: out });
      expect(result.manifest.size).to.equal(bytes.length);
      expect(await readdir(out), name).to.not.include(name);
    }
  });

  it('says what to do when the folder holds another checkpoint', async () => {
    const out = join(dir, 'out');
    await downloadCheckpoint({ id, sources: [httpSource(server.url)], outDir: out });
    const other = `0x${'ab'.repeat(32)}`;
    const error = await verifyCheckpointDir(out, other).then(
      () => null,
      (e: unknown) => e as Error & { code?: string },
    );
    expect(error?.code).to.equal('E_MANIFEST_MISMATCH');
    expect(error?.message).to.include(`--id ${id}`);
    expect(error?.message).to.not.include('source');
  });
});
