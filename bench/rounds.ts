// The coordinator under load: N simulated workers on loopback upload ~1M-parameter updates (dense, then top-k twice) into the
// real round engine on the in-process dev chain. Figures: updates/s and MB/s accepted, CPU per update, peak memory,
// and the time from the last acknowledgement to the on-chain commit.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { WebSocket, WebSocketServer } from 'ws';
import { encodeUpdate } from '../aggregation/index.ts';
import { startCoordinator, type Coordinator, type CoordinatorEvent } from '../coordinator/index.ts';
import { buildManifest, loadDataset, registerDatasetFields, shardDataset } from '../datasets/index.ts';
import { startDevnet } from '../devchain/index.ts';
import { countParams, initBackend, paramSpecs, type ModelConfig } from '../model/index.ts';
import {
  connect,
  initialState,
  signerFromSeed,
  submit,
  syncState,
  type Hex32,
  type KeyringPair,
} from '../pallet-bindings/index.ts';
import { updateMessage, type Task } from '../proto/index.ts';
import { connectWorker, type WorkerConnection } from '../worker/index.ts';
import type { Bench } from './lib.ts';
import { memcpyGBs, withRatio } from './lib.ts';

const CONFIG: ModelConfig = {
  kind: 'lm',
  vocabSize: 260,
  context: 64,
  dModel: 256,
  nLayer: 1,
  nHead: 4,
  dMlp: 1024,
  dropout: 0,
};

/** Every wait on the engine is bounded, so that a stuck round fails the bench instead of hanging it. */
const WAIT_MS = 180_000;

async function until(what: string, done: () => boolean): Promise<void> {
  const limit = Date.now() + WAIT_MS;
  while (!done()) {
    if (Date.now() > limit)
      throw new Error(`bench rounds: timed out after ${WAIT_MS / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The baseline: raw WebSocket throughput over loopback in this process (1 MiB binary messages, no protocol). With
 * `zeroMask` the client masks with the key 0, as fedtune's worker does, so neither side XORs the bytes.
 */
async function rawWebSocketMBs(totalBytes: number, zeroMask: boolean): Promise<number> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', maxPayload: 8 << 20 });
  await new Promise((resolve) => wss.once('listening', resolve));
  const { port } = wss.address() as { port: number };
  let got = 0;
  let done!: () => void;
  const all = new Promise<void>((resolve) => (done = resolve));
  wss.on('connection', (ws) =>
    ws.on('message', (data: Buffer) => {
      got += data.length;
      if (got >= totalBytes) done();
    }),
  );
  const client = new WebSocket(`ws://127.0.0.1:${port}`, {
    perMessageDeflate: false,
    ...(zeroMask ? { generateMask: (mask: Buffer) => void mask.fill(0) } : {}),
  });
  await new Promise((resolve) => client.once('open', resolve));
  const chunk = Buffer.alloc(1 << 20, 3);
  const t0 = performance.now();
  for (let sent = 0; sent < totalBytes; sent += chunk.length) client.send(chunk);
  await all;
  const mbs = totalBytes / 1e6 / ((performance.now() - t0) / 1000);
  client.terminate();
  await new Promise((resolve) => wss.close(resolve));
  return mbs;
}

const bench: Bench = async (ctx) => {
  const n = ctx.quick ? 8 : 32;
  const logger = pino({ level: 'silent' });
  const dir = mkdtempSync(join(tmpdir(), 'fedtune-bench-rounds-'));
  const params = countParams(CONFIG);
  const memcpyMBs = (await memcpyGBs(64 * 1024 * 1024)) * 1000;
  ctx.report({
    name: 'memory copy',
    value: memcpyMBs,
    unit: 'MB/s',
    note: 'reference: Float32Array.set of 64 MB',
  });
  const maskedMBs = await rawWebSocketMBs(64 * 1024 * 1024, false);
  ctx.report(
    withRatio(
      {
        name: 'raw WebSocket, loopback',
        value: maskedMBs,
        unit: 'MB/s',
        note: 'ws, 1 MiB messages, one process, random masking keys (the ws default)',
      },
      memcpyMBs,
    ),
  );
  const wsMBs = await rawWebSocketMBs(64 * 1024 * 1024, true);
  ctx.report(
    withRatio(
      {
        name: 'raw WebSocket, loopback, zero mask',
        value: wsMBs,
        unit: 'MB/s',
        note: "baseline: the same with the worker's zero masking key (no XOR at either end)",
      },
      memcpyMBs,
    ),
  );

  await initBackend({ backend: 'auto' });
  const devnet = await startDevnet({ port: 0, logger, blockMode: 'instant' });
  const client = await connect({ url: devnet.url, logger });
  const workers: WorkerConnection[] = [];
  let coordinator: Coordinator | null = null;
  try {
    ctx.progress(`dev chain up; funding and registering ${n} workers`);
    const [alice, ferdie] = await Promise.all([signerFromSeed('//Alice'), signerFromSeed('//Ferdie')]);
    const pairs = await Promise.all(
      Array.from({ length: n }, (_, i) => signerFromSeed(`//bench-worker-${i}`)),
    );
    const created = await submit(client, {
      signer: alice,
      network: null,
      calls: [
        {
          type: 'createNetwork',
          name: 'bench',
          members: [alice.address],
          quorum: { numerator: 1, denominator: 1 },
          votingPeriod: 1,
          coordinators: [ferdie.address],
        },
      ],
      transfers: pairs.map((p) => ({ dest: p.address, value: 10n ** 15n })),
    });
    const network = Object.keys(
      (await syncState(client, { state: initialState(), to: created.blockNumber })).networks,
    )[0] as Hex32;
    const ds = loadDataset({ name: 'moby-dick' });
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
    // Eight at a time: the dev chain's pool turns a burst of dozens of new senders away as Invalid.
    const register = (w: KeyringPair) =>
      submit(client, {
        signer: w,
        network,
        calls: [
          {
            type: 'registerWorker',
            capabilities: { backend: 'none', device: 'bench', memoryBytes: 0 },
            endpoint: null,
          },
        ],
      });
    for (let i = 0; i < pairs.length; i += 8) {
      await Promise.all(pairs.slice(i, i + 8).map((w) => register(w).catch(() => register(w))));
      ctx.progress(`${Math.min(i + 8, pairs.length)}/${pairs.length} workers registered`);
    }

    // Each event with the moment it was emitted: the commit's breakdown is read from these.
    const events: { at: number; cpu: NodeJS.CpuUsage; event: CoordinatorEvent }[] = [];
    const find = <T extends CoordinatorEvent['type']>(type: T, proposal: number) =>
      events.find((e) => e.event.type === type && e.event.proposal === proposal) as
        { at: number; event: Extract<CoordinatorEvent, { type: T }> } | undefined;
    const engine = await startCoordinator({
      chain: client,
      signer: ferdie,
      network,
      dataDir: join(dir, 'coordinator'),
      logger,
      evalExamples: 32,
      onEvent: (event) => events.push({ at: performance.now(), cpu: process.cpuUsage(), event }),
    });
    coordinator = engine;

    // One task per worker per proposal; each worker prepares its payload as soon as its task arrives, and signs it then:
    // a worker signs on its own machine, so the timed window holds the coordinator's work, not 8-32 sr25519 signings
    // in JavaScript on its thread. A message not signed ahead (none, if the binding below is right) is signed when asked.
    const tasks = new Map<number, Map<string, { task: Task; payload: Uint8Array }>>();
    const presigned = new Map<string, Uint8Array>();
    let signedInWindow = 0;
    const hex = (m: Uint8Array) => Buffer.from(m).toString('hex');
    const presign = (pair: KeyringPair, task: Task, payload: Uint8Array) => {
      const message = updateMessage({
        proposal: task.proposal,
        round: task.round,
        base: task.base.id,
        codec: (JSON.parse(task.codecJson) as { codec: string }).codec,
        payloadBytes: payload.length,
        payloadSha256: new Uint8Array(createHash('sha256').update(payload).digest()),
        samples: 1,
        shards: task.shards,
        network,
        coordinator: ferdie.address,
      });
      presigned.set(hex(message), pair.sign(message));
    };
    const signerOf = (pair: KeyringPair) => ({
      address: pair.address,
      sign: (message: Uint8Array) => {
        const ready = presigned.get(hex(message));
        if (ready) return ready;
        signedInWindow++;
        return pair.sign(message);
      },
    });
    const specs = paramSpecs(CONFIG);
    const payloadFor = (task: Task, seed: number): Uint8Array => {
      let s = seed >>> 0 || 1;
      const tensors = specs.map((p) => {
        const data = new Float32Array(p.shape.reduce((a, b) => a * b, 1));
        for (let i = 0; i < data.length; i++) {
          s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
          data[i] = (s / 2 ** 32 - 0.5) * 2e-3;
        }
        return { name: p.name, shape: p.shape, data };
      });
      const codec = JSON.parse(task.codecJson) as { codec: 'dense' | 'topk'; fraction?: number };
      return encodeUpdate(tensors, codec);
    };
    pairs.forEach((pair: KeyringPair, i) => {
      const conn = connectWorker({
        url: engine.url,
        signer: signerOf(pair),
        logger,
        onTask: (task) => {
          const forProposal = tasks.get(task.proposal) ?? new Map();
          tasks.set(task.proposal, forProposal);
          const payload = payloadFor(task, i + 1);
          presign(pair, task, payload);
          forProposal.set(pair.address, { task, payload });
        },
      });
      workers.push(conn);
    });
    await Promise.all(workers.map((w) => w.ready));

    // The top-k round runs twice: the first in the process runs the sparse check and fold code cold (V8 has not yet
    // optimised it), which costs a small update about twice its steady-state CPU; a coordinator serving round after
    // round runs it warm. Both are reported; the second is the figure.
    for (const [codec, encoding, full] of [
      ['dense', 'dense', true],
      ['top-k 1%, first round in the process', 'topk:0.01', false],
      ['top-k 1%', 'topk:0.01', true],
    ] as const) {
      const before = (await syncState(client, { state: initialState({ only: network }) })).networks[network]!;
      const id = before.proposals.length;
      await submit(client, {
        signer: alice,
        network,
        calls: [
          {
            type: 'proposeRound',
            kind: 'Pretrain',
            baseCheckpoint: null,
            dataset: manifest.root,
            model: { config: JSON.stringify(CONFIG) },
            hyperParams: {
              localSteps: 1,
              batchSize: 1,
              learningRate: 0.001,
              optimiser: 'adamw',
              fedProxMu: 0,
              aggregator: 'fedavg',
              aggregatorOptions: '{}',
              updateEncoding: encoding,
            },
            rounds: 1,
            minWorkers: n,
            maxWorkers: n,
            roundDeadline: 300,
            rewardPerRound: '0',
          },
        ],
      });
      await submit(client, { signer: alice, network, calls: [{ type: 'vote', proposal: id, aye: true }] });
      ctx.progress(`${codec}: proposal ${id} approved; waiting for ${n} tasks`);
      await until(`${n} tasks of proposal ${id}`, () => (tasks.get(id)?.size ?? 0) >= n);

      // The reference again, just before the window: on a shared machine the load moves within minutes, so the ratio
      // compares ingest with raw WebSocket throughput at nearly the same moment.
      const maskedNow = await rawWebSocketMBs(32 * 1024 * 1024, false);
      // Every worker holds its encoded payload: start all uploads at once and watch the coordinator's memory.
      global.gc?.();
      const rssBefore = process.memoryUsage().rss;
      let peak = rssBefore;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
      signedInWindow = 0;
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      let bytes = 0;
      let lastReceived = 0;
      try {
        await Promise.all(
          pairs.map(async (pair, i) => {
            const { task, payload } = tasks.get(id)!.get(pair.address)!;
            bytes += payload.length;
            await workers[i]!.upload({
              taskId: task.taskId,
              proposal: task.proposal,
              round: task.round,
              base: task.base.id,
              codec: (JSON.parse(task.codecJson) as { codec: string }).codec,
              payload,
              samples: 1,
              shards: task.shards,
              trainLoss: 5,
              deadlineMs: task.deadlineMs,
            });
            lastReceived = performance.now();
          }),
        );
        await until(`proposal ${id} to be committed`, () => {
          const failed = find('failRound', id);
          if (failed)
            throw new Error(`bench rounds: the engine failed proposal ${id}: ${failed.event.reason}`);
          return find('finalizeRound', id) !== undefined;
        });
      } finally {
        clearInterval(sampler);
      }
      // The window ends when the coordinator sent its last acknowledgement (it emits updateAccepted just before): the
      // workers read it later, because this one thread may go straight on to aggregate and evaluate.
      const acks = events.filter((e) => e.event.type === 'updateAccepted' && e.event.proposal === id);
      const lastAck = Math.max(...acks.map((e) => e.at));
      const cpu = acks.find((e) => e.at === lastAck)!.cpu;
      const seconds = (lastAck - t0) / 1000;
      const closed = find('roundClosed', id)!;
      const committed = find('finalizeRound', id)!;
      const note = `${n} workers, ${params.toLocaleString('en')} parameters, ${(bytes / n / 1e6).toFixed(2)} MB per update`;
      ctx.report({
        name: `${codec}: updates accepted`,
        value: n / seconds,
        unit: 'updates/s',
        note:
          `${note}; first upload to the last acknowledgement sent (the workers read it ${(lastReceived - lastAck).toFixed(0)} ms later); ` +
          `load average ${loadavg()[0]!.toFixed(1)}; signed before the window: ${n - signedInWindow} of ${n}`,
      });
      // CPU time moves far less with the machine's load than the wall clock: what an update costs this process.
      const cpuMs = (cpu.user - cpu0.user + cpu.system - cpu0.system) / 1000 / n;
      ctx.report({
        name: `${codec}: CPU per update`,
        value: cpuMs,
        unit: 'ms',
        note: `all threads of this process (the coordinator, its crypto thread, the simulated workers' hashing and framing) from the first upload to the last acknowledgement sent: ${(1000 / cpuMs).toFixed(0)} updates per CPU-second`,
      });
      if (!full) continue;
      ctx.report(
        withRatio(
          {
            name: `${codec}: payload accepted`,
            value: bytes / 1e6 / seconds,
            unit: 'MB/s',
            note: `${note}; ref: raw WebSocket with the worker's zero mask (the workers hash their payloads on the coordinator's thread); ${(bytes / 1e6 / seconds / maskedMBs || 0).toFixed(2)} of the randomly masked one at the start`,
          },
          wsMBs,
        ),
      );
      ctx.report(
        withRatio(
          {
            name: `${codec}: payload accepted vs raw WebSocket just before`,
            value: bytes / 1e6 / seconds,
            unit: 'MB/s',
            note: 'ref: raw WebSocket with random masking keys (the ws default), 32 MB measured right before the uploads',
          },
          maskedNow,
        ),
      );
      const grew = peak - rssBefore;
      ctx.report({
        name: `${codec}: peak RSS`,
        value: peak / 1e6,
        unit: 'MB',
        note: `+${(grew / 1e6).toFixed(0)} MB during the round (${(grew / n / 1e6).toFixed(2)} MB per update); the workers and the chain share this process`,
      });
      ctx.report({
        name: `${codec}: aggregation`,
        value: closed.event.aggregationMs,
        unit: 'ms',
        note: `fedavg over ${n} updates, as the engine's roundClosed event reports it`,
      });
      ctx.report({
        name: `${codec}: last acknowledgement to on-chain commit`,
        value: (committed.at - lastAck) / 1000,
        unit: 's',
        // The engine closes the round once maxWorkers updates are folded in, while the last group commit of the journal is
        // still under way: part of the aggregation and evaluation happens before the last acknowledgement.
        note:
          `roundClosed (aggregated, evaluated on 32 held-out examples, stored) +${((closed.at - lastAck) / 1000).toFixed(2)} s, ` +
          `then finalizeRound final on chain +${((committed.at - closed.at) / 1000).toFixed(2)} s (block ${committed.event.blockNumber})`,
      });
    }
  } finally {
    await Promise.all(workers.map((w) => w.close()));
    await coordinator?.close();
    await client.close();
    await devnet.close();
    rmSync(dir, { recursive: true, force: true });
  }
};

export default bench;
