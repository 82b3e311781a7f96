// The dev chain's speed: start-up (new and resumed), block build time, signed extrinsics per second through the RPC in
// each block mode, memory, and the two chopsticks databases (plain file vs sqlite) side by side.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import type { KeyringPair } from '@polkadot/keyring/types';
import { stringToHex } from '@polkadot/util';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import type { HexString } from '@polkadot/util/types';
import { pino } from 'pino';
import { FileDatabase, startDevnet, type BlockMode, type Devnet } from '../devchain/index.ts';
import type { Bench, BenchContext } from './lib.ts';
import { timeIt } from './lib.ts';

const logger = pino({ level: 'silent' });
const rssMB = () => process.memoryUsage().rss / 2 ** 20;
const seconds = (t0: number) => (performance.now() - t0) / 1000;

async function connect(url: string): Promise<ApiPromise> {
  return ApiPromise.create({ provider: new WsProvider(url), noInitWarn: true, throwOnConnect: true });
}

/** Signs `count` remarks ahead of time, round-robin over the signers with consecutive nonces each. */
async function presign(api: ApiPromise, signers: KeyringPair[], count: number): Promise<HexString[]> {
  const nonces = await Promise.all(
    signers.map(async (s) => (await api.rpc.system.accountNextIndex(s.address)).toNumber()),
  );
  const out: HexString[] = [];
  for (let i = 0; i < count; i++) {
    const k = i % signers.length;
    const tx = api.tx.system.remark(stringToHex(`bench ${i}`));
    await tx.signAsync(signers[k]!, { nonce: nonces[k]!++, era: 0 });
    out.push(tx.toHex());
  }
  return out;
}

/** Submits every transaction at once over the RPC and resolves when all are in blocks (manual mode: asks for them). */
async function throughput(
  devnet: Devnet,
  api: ApiPromise,
  txs: HexString[],
  mode: BlockMode,
): Promise<number> {
  let included = 0;
  const done = new Promise<void>((resolve) => {
    void api.rpc.chain.subscribeNewHeads(async (header) => {
      const { block } = await api.rpc.chain.getBlock(header.hash);
      included += block.extrinsics.filter((x) => x.isSigned).length;
      if (included >= txs.length) resolve();
    });
  });
  const t0 = performance.now();
  await Promise.all(txs.map((tx) => api.rpc.author.submitExtrinsic(tx)));
  if (mode === 'manual') await devnet.newBlock();
  await done;
  return txs.length / seconds(t0);
}

async function modes(ctx: BenchContext, signers: KeyringPair[]): Promise<void> {
  const counts: Record<BlockMode, number> = ctx.quick
    ? { instant: 8, batch: 40, manual: 40 }
    : { instant: 30, batch: 200, manual: 200 };
  for (const mode of ['instant', 'batch', 'manual'] as const) {
    const devnet = await startDevnet({ port: 0, logger, blockMode: mode });
    const api = await connect(devnet.url);
    try {
      const txs = await presign(api, signers, counts[mode]);
      const tps = await throughput(devnet, api, txs, mode);
      ctx.report({
        name: `devchain.tx_per_s.${mode}`,
        value: tps,
        unit: 'tx/s',
        note: `${txs.length} signed system.remark from ${signers.length} accounts, submitted at once over ws`,
      });
      ctx.progress(`${mode}: ${tps.toFixed(1)} tx/s`);
      ctx.report({
        name: `devchain.rss_after.${mode}`,
        value: rssMB(),
        unit: 'MiB',
        note: 'whole process: runtime worker, chain and the bench client',
      });
    } finally {
      await api.disconnect();
      await devnet.close();
    }
  }
}

/** Median ms to build an empty block and a block of 20 system.remark from Alice (each checked to hold all 20). */
async function buildTimes(ctx: BenchContext, devnet: Devnet): Promise<{ empty: number; full: number }> {
  const empty = await timeIt(() => devnet.newBlock(), { minMs: ctx.quick ? 1000 : 4000, minRuns: 5 });
  const api = await connect(devnet.url);
  try {
    const keyring = new Keyring({ type: 'sr25519' });
    const alice = keyring.addFromUri('//Alice');
    const perBlock = 20;
    const txs = await presign(api, [alice], (ctx.quick ? 3 : 10) * perBlock);
    const full: number[] = [];
    for (let i = 0; i < txs.length; i += perBlock) {
      await Promise.all(txs.slice(i, i + perBlock).map((tx) => api.rpc.author.submitExtrinsic(tx)));
      const t = performance.now();
      const { hash } = await devnet.newBlock();
      full.push(performance.now() - t);
      const { block } = await api.rpc.chain.getBlock(hash);
      const signed = block.extrinsics.filter((x) => x.isSigned).length;
      if (signed !== perBlock) throw new Error(`a bench block holds ${signed} remarks, not ${perBlock}`);
    }
    full.sort((a, b) => a - b);
    return { empty: empty * 1000, full: full[full.length >> 1]! };
  } finally {
    await api.disconnect();
  }
}

async function blocksAndStartup(ctx: BenchContext): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'fedtune-bench-devchain-'));
  try {
    const rss0 = rssMB();
    let t0 = performance.now();
    let devnet = await startDevnet({ port: 0, logger, blockMode: 'manual', dataDir });
    ctx.report({
      name: 'devchain.startup.new',
      value: seconds(t0),
      unit: 's',
      note: 'genesis, block 1, RPC up',
    });
    ctx.report({
      name: 'devchain.rss',
      value: rssMB(),
      unit: 'MiB',
      ref: rss0,
      note: 'ref: RSS before start',
    });

    const { empty, full } = await buildTimes(ctx, devnet);
    ctx.report({
      name: 'devchain.block_build.empty',
      value: empty,
      unit: 'ms',
      note: 'inherents only, saved; one runtime task',
    });
    ctx.report({
      name: 'devchain.block_build.20_remarks',
      value: full,
      unit: 'ms',
      ref: empty,
      note: 'median; ref: empty block',
    });
    const stats = devnet.blockBuildStats();
    ctx.progress(`blocks in one runtime task: ${stats.oneTask}, by chopsticks' builder: ${stats.fallback}`);
    // The same at the same moment with chopsticks' own builder (a task a call): the ratio is the figure to trust.
    const reference = await startDevnet({ port: 0, logger, blockMode: 'manual', blockBuilder: 'chopsticks' });
    try {
      const chopsticks = await buildTimes(ctx, reference);
      ctx.report({
        name: 'devchain.block_build.empty.chopsticks_builder',
        value: chopsticks.empty,
        unit: 'ms',
        ref: empty,
        note: "chopsticks' own builder; ref: one runtime task",
      });
      ctx.report({
        name: 'devchain.block_build.20_remarks.chopsticks_builder',
        value: chopsticks.full,
        unit: 'ms',
        ref: full,
        note: "median, chopsticks' own builder; ref: one runtime task",
      });
    } finally {
      await reference.close();
    }
    const head = (await devnet.newBlock()).number;
    await devnet.close();

    t0 = performance.now();
    devnet = await startDevnet({ port: 0, logger, blockMode: 'manual', dataDir });
    const resumed = seconds(t0);
    if (!devnet.resumed || devnet.startBlock !== head)
      throw new Error('the bench chain did not resume at its head');
    ctx.report({
      name: 'devchain.startup.resumed',
      value: resumed,
      unit: 's',
      note: `${head} blocks, ${(statSync(join(dataDir, 'chain.jsonl')).size / 1024).toFixed(0)} KiB log`,
    });
    await devnet.close();
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** The part of chopsticks' sqlite database (`@acala-network/chopsticks-db`) measured here. */
interface SqliteLike {
  saveBlock(block: unknown): Promise<void>;
  queryHighestBlock(): Promise<unknown>;
  close(): Promise<void>;
}

/** saveBlock and reopen for FileDatabase and chopsticks' sqlite database, on blocks shaped like the dev chain's. */
async function databases(ctx: BenchContext): Promise<void> {
  const count = ctx.quick ? 100 : 500;
  const hex = (n: number, bytes: number) => `0x${n.toString(16).padStart(bytes * 2, '0')}` as HexString;
  const blocks = Array.from({ length: count }, (_, i) => ({
    hash: hex(i + 1, 32),
    number: i + 1,
    header: hex(i, 180),
    parentHash: hex(i, 32),
    extrinsics: [hex(i, 60), hex(i, 40), hex(i, 150)],
    // A remark block's state diff: about 25 keys (System events, fees, the account, timestamps).
    storageDiff: Object.fromEntries(Array.from({ length: 25 }, (_, k) => [hex(k, 48), hex(i * 31 + k, 80)])),
  }));
  const dir = mkdtempSync(join(tmpdir(), 'fedtune-bench-db-'));
  try {
    const file = new FileDatabase(join(dir, 'chain.jsonl'));
    let t0 = performance.now();
    for (const b of blocks) await file.saveBlock(b);
    const fileSave = (performance.now() - t0) / count;
    await file.close();
    t0 = performance.now();
    const reopened = new FileDatabase(join(dir, 'chain.jsonl'));
    await reopened.queryHighestBlock();
    const fileOpen = performance.now() - t0;
    await reopened.close();
    ctx.report({
      name: 'devchain.db.file.save_block',
      value: fileSave,
      unit: 'ms',
      note: 'append + fdatasync',
    });
    ctx.report({ name: 'devchain.db.file.open', value: fileOpen, unit: 'ms', note: `${count} blocks` });

    try {
      // Not a dependency: installed on request (see the catch below), so named through a variable for the type check.
      const name = '@acala-network/chopsticks-db';
      const sqlite = (await import(name)) as { SqliteDatabase: new (path: string) => SqliteLike };
      const db = new sqlite.SqliteDatabase(join(dir, 'chain.sqlite'));
      t0 = performance.now();
      for (const b of blocks) await db.saveBlock(b);
      const sqlSave = (performance.now() - t0) / count;
      await db.close();
      t0 = performance.now();
      const again = new sqlite.SqliteDatabase(join(dir, 'chain.sqlite'));
      await again.queryHighestBlock();
      const sqlOpen = performance.now() - t0;
      await again.close();
      ctx.report({
        name: 'devchain.db.sqlite.save_block',
        value: sqlSave,
        unit: 'ms',
        ref: fileSave,
        ratio: sqlSave / fileSave,
        note: 'chopsticks-db SqliteDatabase (typeorm); ref: file',
      });
      ctx.report({
        name: 'devchain.db.sqlite.open',
        value: sqlOpen,
        unit: 'ms',
        ref: fileOpen,
        note: 'ref: file',
      });
    } catch (error) {
      // chopsticks' sqlite database is not a dependency (fedtune never loads it): measured only once installed, with the
      // native module its install script would build.
      ctx.progress(
        `sqlite database not measured (install it: \`npm install --no-save @acala-network/chopsticks-db@1.5.1 && cd node_modules/sqlite3 && npx node-gyp rebuild\`): ${(error as Error).message.split('\n')[0]}`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const bench: Bench = async (ctx) => {
  await cryptoWaitReady();
  const keyring = new Keyring({ type: 'sr25519' });
  const signers = ['//Alice', '//Bob', '//Charlie', '//Dave'].map((uri) => keyring.addFromUri(uri));
  ctx.progress('start-up and block build');
  await blocksAndStartup(ctx);
  ctx.progress('throughput per block mode');
  await modes(ctx, signers);
  ctx.progress('databases');
  await databases(ctx);
};

export default bench;
