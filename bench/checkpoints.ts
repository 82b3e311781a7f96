// Checkpoint store and verified download throughput over loopback, beside a raw file copy measured in the same process.
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { randomBytes, createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  downloadCheckpoint,
  httpSource,
  openStore,
  serveCheckpoints,
  syncPath,
} from '../checkpoints/index.ts';
import type { Bench } from './lib.ts';
import { withRatio } from './lib.ts';

const bench: Bench = async (ctx) => {
  const mb = ctx.quick ? 32 : 256;
  const dir = await mkdtemp(join(tmpdir(), 'fedtune-bench-ckpt-'));
  try {
    const bytes = new Uint8Array(randomBytes(mb * 1024 * 1024));
    const seconds = async (fn: () => Promise<unknown>) => {
      const t0 = performance.now();
      await fn();
      return (performance.now() - t0) / 1000;
    };

    ctx.progress(`${mb} MiB checkpoint, 1 MiB chunks`);
    const source = join(dir, 'source.bin');
    await writeFile(source, bytes);
    const copyMBs = mb / (await seconds(() => copyFile(source, join(dir, 'copy.bin'))));
    const hashMBs = mb / (await seconds(async () => createHash('sha256').update(bytes).digest()));
    const syncedCopyMBs =
      mb /
      (await seconds(async () => {
        await copyFile(source, join(dir, 'copy2.bin'));
        await syncPath(join(dir, 'copy2.bin'));
      }));
    ctx.report({
      name: 'raw file copy',
      value: copyMBs,
      unit: 'MB/s',
      note: 'reference: copyFile of the same bytes',
    });
    ctx.report({ name: 'sha256 one buffer', value: hashMBs, unit: 'MB/s', note: 'reference: hashing alone' });

    const store = await openStore(join(dir, 'store'));
    let id = '';
    const putSeconds = await seconds(async () => {
      ({ id } = await store.put(bytes, { model: null }));
    });
    ctx.report(
      withRatio(
        { name: 'store put (chunk, hash, fsync)', value: mb / putSeconds, unit: 'MB/s' },
        syncedCopyMBs,
      ),
    );

    const server = await serveCheckpoints({ store });
    try {
      for (const concurrency of [1, 4]) {
        const out = join(dir, `out-${concurrency}`);
        const s = await seconds(() =>
          downloadCheckpoint({ id, sources: [httpSource(server.url)], outDir: out, concurrency }),
        );
        ctx.report(
          withRatio(
            {
              name: `verified download x${concurrency}`,
              value: mb / s,
              unit: 'MB/s',
              note: "loopback HTTP, every chunk hashed, the file fsync'd",
            },
            syncedCopyMBs,
          ),
        );
      }
    } finally {
      await server.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};

export default bench;
