// bench/datasets: MB/s to load+tokenize and to build a manifest (hashing + Merkle) of the largest corpus, beside references.
import { createHash } from 'node:crypto';
import type { Bench } from './lib.ts';
import { memcpyGBs, timeIt, withRatio } from './lib.ts';
import { buildManifest, encode, loadBuiltin, shardDataset } from '../datasets/index.ts';

const CORPUS = 'spam-assassin';

const bench: Bench = async (ctx) => {
  const opts = ctx.quick ? { minMs: 0, minRuns: 1 } : { minMs: 3000, minRuns: 3 };
  const memMBs = (await memcpyGBs(ctx.quick ? 64 * 1024 * 1024 : 256 * 1024 * 1024)) * 1000;

  let ds = loadBuiltin(CORPUS);
  const bytes = ds.records.reduce((a, r) => a + Buffer.byteLength(r.text), 0);
  const mbytes = bytes / 1e6;
  const note = `${CORPUS}: ${ds.records.length} records, ${mbytes.toFixed(1)} MB`;
  ctx.progress(note);

  const tokenizeAll = () => {
    let n = 0;
    for (const r of ds.records) n += encode(r.text, { bos: true, eos: true }).length;
    return n;
  };
  const loadTokenize = await timeIt(() => {
    ds = loadBuiltin(CORPUS);
    tokenizeAll();
  }, opts);
  ctx.report(
    withRatio(
      { name: 'load+tokenize', value: mbytes / loadTokenize, unit: 'MB/s', note: `${note}; ref memcpy MB/s` },
      memMBs,
    ),
  );
  const tokenize = await timeIt(tokenizeAll, opts);
  ctx.report(
    withRatio(
      { name: 'tokenize', value: mbytes / tokenize, unit: 'MB/s', note: `encode only; ref memcpy MB/s` },
      memMBs,
    ),
  );

  // Reference: raw SHA-256 of one buffer of the same size, the floor for hashing every record.
  const buffer = Buffer.alloc(bytes, 0x61);
  const raw = await timeIt(() => createHash('sha256').update(buffer).digest(), opts);
  const shaMBs = mbytes / raw;
  const plan = shardDataset(ds, { scheme: 'dirichlet', shards: 16, alpha: 0.5, seed: 1 });
  const manifest = await timeIt(() => buildManifest(ds, plan), opts);
  ctx.report(
    withRatio(
      {
        name: 'manifest',
        value: mbytes / manifest,
        unit: 'MB/s',
        note: `record hashes + Merkle root, 16 dirichlet shards; ref SHA-256 of one ${mbytes.toFixed(1)} MB buffer`,
      },
      shaMBs,
    ),
  );
};

export default bench;
