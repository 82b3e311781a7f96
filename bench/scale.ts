// One coordinator, a thousand workers: the real coordinator (its own process) and the dev chain (this process), with
// 1,000 registered workers simulated by a few client processes — real chain keys and signatures, real top-k (1%)
// updates of a ~1 M-parameter model, real websockets. Figures: the round from its first task to finalizeRound final on
// chain, updates/s, the coordinator's peak RSS, bytes in; registering the workers on chain is timed on its own.
// Then the same workers on the same chain split over 4 sub-coordinators (own processes) under one parent, the same
// figures with the single coordinator's as `ref` (bench/scale/hierarchy.ts; docs/rounds.md, "Hierarchical rounds").
// --quick: 100 workers over 2 client processes (the full run: 1,000 over 4; FEDTUNE_BENCH_SCALE_WORKERS sets another).
// --cohorts N: N sub-coordinators (default 4); --cohorts 0 runs the single coordinator only.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { buildManifest, loadDataset, registerDatasetFields, shardDataset } from '../datasets/index.ts';
import { startDevnet } from '../devchain/index.ts';
import { countParams } from '../model/index.ts';
import {
  connect,
  finalizedHead,
  initialState,
  MAX_REGISTRATIONS_PER_CALL,
  registerWorkersCalls,
  signRegistration,
  signerFromSeed,
  submit,
  syncState,
  type Hex32,
  type KeyringPair,
} from '../pallet-bindings/index.ts';
import type { Bench } from './lib.ts';
import { runHierarchy, type SingleFigures } from './scale/hierarchy.ts';
import { SCALE_MODEL } from './scale/model.ts';
import { child, peakRss, stop } from './scale/processes.ts';
import { proposeScaleRound } from './scale/propose.ts';

/** The goals for one coordinator and 1,000 workers. */
const GOAL_SECONDS = 15;
const GOAL_RSS_MB = 2000;
/** The dev chain builds a block this long after a transaction reaches an empty pool. */
const BLOCK_MS = 200;

/** `--cohorts N` on the bench's command line (bench/run.ts passes its arguments through), else 4. */
function cohortsFlag(): number {
  const i = process.argv.indexOf('--cohorts');
  if (i < 0) return 4;
  const n = Number(process.argv[i + 1]);
  if (!Number.isInteger(n) || n < 0)
    throw new Error(`bench scale [E_USAGE]: --cohorts takes a count, 0 or more`);
  return n;
}

const bench: Bench = async (ctx) => {
  const n = Number(process.env.FEDTUNE_BENCH_SCALE_WORKERS) || (ctx.quick ? 100 : 1000);
  const processes = ctx.quick ? 2 : 4;
  const cohorts = cohortsFlag();
  const logger = pino({ level: 'silent' });
  const dir = mkdtempSync(join(tmpdir(), 'fedtune-bench-scale-'));
  // Batch mode: a block holds whatever reached the pool in the BLOCK_MS after the first transaction, so a thousand
  // registrations fill a few blocks, not a thousand; the round's commit waits for one such block too.
  // A block also comes every second without transactions, so the proposal's voting period ends.
  const devnet = await startDevnet({
    port: 0,
    logger,
    blockMode: 'batch',
    blockTime: BLOCK_MS,
    blockIntervalMs: 1000,
  });
  const client = await connect({ url: devnet.url, logger });
  let children: ChildProcess[] = [];
  try {
    const [alice, ferdie] = await Promise.all([signerFromSeed('//Alice'), signerFromSeed('//Ferdie')]);
    // The sub-coordinators' accounts: a parent admits only the network's coordinators on chain.
    const subSeeds = Array.from({ length: cohorts }, (_, i) => `//bench-scale-sub-${i}`);
    const subs = await Promise.all(subSeeds.map((seed) => signerFromSeed(seed)));
    const pairs: KeyringPair[] = [];
    for (let i = 0; i < n; i++) pairs.push(await signerFromSeed(`//bench-scale-${i}`));
    const created = await submit(client, {
      signer: alice,
      network: null,
      calls: [
        {
          type: 'createNetwork',
          name: 'bench-scale',
          members: [alice.address],
          quorum: { numerator: 1, denominator: 1 },
          votingPeriod: 1,
          coordinators: [ferdie.address, ...subs.map((s) => s.address)],
        },
      ],
    });
    const network = Object.keys(
      (await syncState(client, { state: initialState(), to: created.blockNumber })).networks,
    )[0] as Hex32;
    // A shard per worker (the coordinator hands out at most as many tasks as there are shards): the corpus with
    // records enough for a thousand (moby-dick has 139).
    const ds = loadDataset({ name: 'spam-assassin' });
    const manifest = buildManifest(
      ds,
      shardDataset(ds, { scheme: 'iid', shards: n, seed: 0, evalFraction: 0.02 }),
    );
    const manifestPath = join(dir, 'manifest.json');
    writeFileSync(manifestPath, JSON.stringify(manifest));
    await submit(client, {
      signer: alice,
      network,
      calls: [
        { type: 'registerDataset', ...registerDatasetFields(manifest, pathToFileURL(manifestPath).href) },
      ],
    });

    // Registration: each worker signs its consent (registerWorkers: network, account, validUntil, its capabilities),
    // and one account submits them all in one extrinsic, a utility.batchAll of registerWorkers remarks of 256 each.
    // The workers need no funds: they never sign an extrinsic, and their rewards create their accounts.
    const registration0 = performance.now();
    const validUntil = (await finalizedHead(client)).number + 100;
    const fields = { capabilities: { backend: 'none', device: 'bench', memoryBytes: 0 }, endpoint: null };
    const consents = pairs.map((p) => signRegistration(p, network, validUntil, fields));
    const signed = performance.now();
    const registeredAt = await submit(client, {
      signer: alice,
      network,
      calls: registerWorkersCalls(validUntil, consents),
    });
    const registered = performance.now();
    const folding = performance.now();
    const state = await syncState(client, { state: initialState({ only: network }) });
    const folded = performance.now();
    const count = Object.keys(state.networks[network]!.workers).length;
    if (count !== n) throw new Error(`bench scale: ${count} of ${n} workers registered on chain`);
    ctx.report({
      name: `registration of ${n} workers`,
      value: (registered - registration0) / 1000,
      unit: 's',
      note:
        `the workers' consents signed in ${((signed - registration0) / 1000).toFixed(1)} s, then one extrinsic of ` +
        `${Math.ceil(n / MAX_REGISTRATIONS_PER_CALL)} registerWorkers calls final in block ${registeredAt.blockNumber}; ` +
        `folding the chain from genesis through the reducer (${n} sr25519 checks) then took ${((folded - folding) / 1000).toFixed(1)} s`,
    });

    // FEDTUNE_BENCH_SCALE_PROFILE=DIR: the coordinator writes a CPU profile there (node --cpu-prof).
    const profile = process.env.FEDTUNE_BENCH_SCALE_PROFILE;
    const coordinator = child(
      'coordinator.ts',
      [devnet.url, network, join(dir, 'coordinator')],
      profile ? ['--cpu-prof', '--cpu-prof-dir', profile] : [],
    );
    children.push(coordinator.proc);
    await coordinator.until('the coordinator to listen', () =>
      coordinator.lines.some((l) => l.type === 'listening'),
    );
    const url = coordinator.lines.find((l) => l.type === 'listening')!.url as string;
    const per = Math.ceil(n / processes);
    const clients = Array.from({ length: processes }, (_, p) =>
      child('workers.ts', [url, String(p * per), String(Math.min(per, n - p * per))]),
    );
    children.push(...clients.map((c) => c.proc));
    for (const c of clients)
      await c.until('workers to connect', () => c.lines.some((l) => l.type === 'connected'));
    ctx.progress(`${n} workers connected to the coordinator over ${processes} client processes`);

    await proposeScaleRound(client, {
      signer: alice,
      network,
      dataset: manifest.root,
      proposal: 0,
      slots: n,
      workers: n,
    });
    ctx.progress('proposal approved; the round runs');
    const event = coordinator.event;
    await coordinator
      .until('finalizeRound', () => {
        const failed = event('failRound');
        if (failed)
          throw new Error(`bench scale: the coordinator failed the round: ${String(failed.reason)}`);
        return event('finalizeRound') !== undefined;
      })
      .catch((error: Error) => {
        throw new Error(`${error.message}\n${clients.map((c) => c.summary()).join('\n')}`);
      });
    for (const c of clients)
      await c.until('every acknowledgement', () => c.lines.some((l) => l.type === 'done'));
    const rss = peakRss(coordinator.proc.pid!);

    const started = event('roundStarted')!.at;
    const accepted = coordinator.lines.filter((l) => l.type === 'updateAccepted');
    const lastAck = Math.max(...accepted.map((l) => l.at));
    const closed = event('roundClosed')!;
    const final = event('finalizeRound')!;
    const bytes = clients.reduce((sum, c) => sum + Number(c.lines.find((l) => l.type === 'done')!.bytes), 0);
    const seconds = (final.at - started) / 1000;
    const who = `${n} workers over ${processes} client processes, ${countParams(SCALE_MODEL).toLocaleString('en')} parameters, top-k 1%`;
    ctx.report({
      name: 'round: first task to finalizeRound final',
      value: seconds,
      unit: 's',
      ref: GOAL_SECONDS,
      ratio: seconds / GOAL_SECONDS,
      note:
        `${who}; ref: the goal for 1,000 workers. Last acknowledgement +${((lastAck - started) / 1000).toFixed(2)} s, ` +
        `roundClosed (aggregated, evaluated, stored) +${((closed.at - started) / 1000).toFixed(2)} s, ` +
        `final on chain +${seconds.toFixed(2)} s`,
    });
    const last = accepted.find((l) => l.at === lastAck)!;
    const cpuMs = (Number(last.cpuMs) - Number(event('roundStarted')!.cpuMs)) / accepted.length;
    ctx.report({
      name: 'coordinator CPU per update',
      value: cpuMs,
      unit: 'ms',
      note:
        `CPU time of the coordinator process (crypto threads included) from the first task to the last acknowledgement, ` +
        `per update: what the load average does not change; ${(1000 / cpuMs).toFixed(0)} updates/s per core it gets`,
    });
    ctx.report({
      name: 'updates accepted',
      value: accepted.length / ((lastAck - started) / 1000),
      unit: 'updates/s',
      note: `${accepted.length} updates, first task to the last acknowledgement (the clients sign and send on the same 2 cores)`,
    });
    if (rss !== null)
      ctx.report({
        name: 'coordinator peak RSS',
        value: rss / 1e6,
        unit: 'MB',
        ref: GOAL_RSS_MB,
        ratio: rss / 1e6 / GOAL_RSS_MB,
        note: 'VmHWM of the coordinator process over its whole life (model, strategy, 1,000 connections, journal); ref: the goal',
      });
    ctx.report({
      name: 'bytes in',
      value: bytes / 1e6,
      unit: 'MB',
      note: `update payloads, ${(bytes / accepted.length / 1e3).toFixed(1)} kB each; ${(bytes / 1e6 / ((lastAck - started) / 1000)).toFixed(1)} MB/s to the last acknowledgement`,
    });
    if (cohorts === 0) return;

    // The same workers, the same chain, one coordinator after the other: the single one and its clients stop first.
    await Promise.all(children.map(stop));
    children = [];
    const single: SingleFigures = {
      seconds,
      updatesPerSecond: accepted.length / ((lastAck - started) / 1000),
      cpuPerUpdateMs: cpuMs,
      cpuRoundMs: Number(final.cpuMs) - Number(event('roundStarted')!.cpuMs),
      rssMB: rss === null ? null : rss / 1e6,
      bytesInMB: bytes / 1e6,
    };
    await runHierarchy(ctx, {
      client,
      chainUrl: devnet.url,
      signer: alice,
      network,
      dataset: manifest.root,
      proposal: 1,
      workers: n,
      subSeeds,
      dir,
      spawned: (procs) => children.push(...procs),
      single,
    });
  } finally {
    await Promise.all(children.map(stop));
    await client.close();
    await devnet.close();
    rmSync(dir, { recursive: true, force: true });
  }
};

export default bench;
