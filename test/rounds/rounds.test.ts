// The round engine end to end: a devnet, a coordinator and three workers in one process, a tiny model on moby-dick.
import { get } from 'node:http';
import { join } from 'node:path';
import { EventEmitter } from 'node:events';
import { expect } from 'chai';
import WebSocket from 'ws';
import { encodeUpdate } from '../../aggregation/index.ts';
import { modelConfig, paramSpecs } from '../../model/index.ts';
import { decodeFrame, type Task } from '../../proto/index.ts';
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { buildManifest, loadDataset, registerDatasetFields, shardDataset } from '../../datasets/index.ts';
import { signerFromSeed, submit, type Hex32, type KeyringPair } from '../../pallet-bindings/index.ts';
import { connectWorker, WorkerError, type WorkerConnection } from '../../worker/index.ts';
import { startCoordinator, type Coordinator, type CoordinatorEvent } from '../../coordinator/index.ts';
import { runWorker, type RunningWorker, type WorkerEvent } from '../../worker/index.ts';
import {
  approveProposal,
  freeBalance,
  logger,
  proposal,
  readState,
  setUp,
  waitFor,
  type Fixture,
  until,
} from './helpers.ts';
import { SkipClock } from './skip-clock.ts';

function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

describe('rounds: coordinator and workers on the dev chain', function () {
  this.timeout(300_000);
  let f: Fixture;
  let coordinator: Coordinator | null = null;
  const workers: RunningWorker[] = [];
  const events = new EventEmitter();
  const onCoordinator = (fn: (e: CoordinatorEvent) => void) => events.on('c', fn);
  // Real time, moved on where a round's deadline can only end one way, so that the test does not wait it out.
  const clock = new SkipClock();

  before(async () => {
    f = await setUp('rounds');
  });
  after(async () => {
    await Promise.all(workers.map((w) => w.close()));
    await coordinator?.close();
    await f?.close();
  });

  const start = (port = 0) =>
    startCoordinator({
      limits: { maxFrameBytes: 256 * 1024 },
      chain: f.client,
      signer: f.coordinator,
      network: f.network,
      dataDir: join(f.dir, 'coordinator'),
      port,
      logger,
      evalExamples: 64,
      clock,
      onEvent: (e) => events.emit('c', e),
    });

  const worker = (i: number, onEvent?: (e: WorkerEvent) => void, chunkBytes?: number) => {
    const w = runWorker({
      url: coordinator!.url,
      signer: f.workers[i]!,
      cacheDir: join(f.dir, `worker-${i}`),
      logger,
      onEvent,
      chunkBytes,
      reconnect: { minMs: 100, maxMs: 500 },
    });
    workers.push(w);
    return w;
  };

  it('runs two rounds to two commits with rewards paid, though a worker dies mid-upload', async () => {
    coordinator = await start();
    // Round 0 waits for Dave: his slot is handed on once he has stayed away silentAfterMs (10 s), and with nobody idle
    // the round closes with what it has, at the latest at its deadline. Once Dave is gone and Bob's and Charlie's
    // updates are in, nothing can change that outcome, so time moves past the deadline at once.
    let deadline0: number | null = null;
    let accepted0 = 0;
    let cut = false;
    const skipToDeadline = () => {
      if (cut && accepted0 === 2 && deadline0 !== null) {
        clock.skip(deadline0 - clock.now() + 1);
        deadline0 = null;
      }
    };
    const round0 = (e: CoordinatorEvent) => {
      if (!('round' in e) || e.round !== 0) return;
      if (e.type === 'roundStarted') deadline0 = e.deadlineMs;
      if (e.type === 'updateAccepted') accepted0++;
      skipToDeadline();
    };
    onCoordinator(round0);
    const id = await approveProposal(f, { rounds: 2, roundDeadline: 25 });
    const before = await Promise.all(f.workers.map((w) => freeBalance(f, w.address)));
    const results: WorkerEvent[] = [];
    worker(0, (e) => results.push(e));
    worker(1, (e) => results.push(e));
    // Dave's connection is cut in the middle of his first upload, and he never comes back.
    const dave = worker(
      2,
      (e) => {
        if (e.type === 'upload' && !cut && e.sent < e.total) {
          cut = true;
          void dave.close();
          skipToDeadline();
        }
      },
      8 * 1024,
    );
    const committed: Extract<CoordinatorEvent, { type: 'finalizeRound' }>[] = [];
    onCoordinator((e) => e.type === 'finalizeRound' && committed.push(e));
    await waitFor(onCoordinator, (e) => e.type === 'finalizeRound' && e.round === 1);
    events.off('c', round0);
    expect(cut, 'Dave was cut mid-upload').to.equal(true);

    const p = await proposal(f, id);
    expect(p.status).to.equal('completed');
    expect(p.finalized).to.have.length(2);
    const [r0, r1] = p.finalized;
    expect(r0!.checkpoint.id).to.equal(committed[0]!.checkpointId);
    expect(r1!.checkpoint.id).to.equal(committed[1]!.checkpointId);
    expect(r0!.contributors.map((c) => c.account).sort()).to.deep.equal(
      [f.workers[0]!.address, f.workers[1]!.address].sort(),
    );
    expect(r0!.metrics.evalLoss).to.be.a('number').and.to.be.greaterThan(0);
    const base = r0!.metrics.extra.find((m) => m.name === 'baseEvalLoss');
    expect(base, 'round 0 reports the base loss').to.not.equal(undefined);
    expect(r1!.metrics.evalLoss).to.be.lessThan(base!.value);
    // Rewards: 3e12 per round split by samples between the two contributors (equal samples: half each).
    expect(r0!.rewards).to.have.length(2);
    const after = await Promise.all(f.workers.map((w) => freeBalance(f, w.address)));
    expect(after[0]! - before[0]!).to.equal(3_000_000_000_000n);
    expect(after[2]).to.equal(before[2]);
    // Each contributor got its receipt and a round result proving its update is under updatesRoot.
    const proven = results.filter((e) => e.type === 'result' && e.verified);
    expect(proven).to.have.length(4);
    // The coordinator serves the committed checkpoint by its id, and reports on /health and /metrics.
    expect(await coordinator.store.has(r1!.checkpoint.id)).to.equal(true);
    const health = JSON.parse(await httpGet(`${coordinator.httpUrl}/health`)) as { status: string };
    expect(health.status).to.equal('ok');
    const metrics = await httpGet(`${coordinator.httpUrl}/metrics`);
    expect(metrics).to.match(/^fedtune_rounds_committed_total 2$/m);
    expect(metrics).to.match(/^fedtune_last_aggregation_seconds \d/m);
  });

  /** A worker driven by the test: it records its tasks and uploads only what the test tells it to. */
  function manualWorker(pair: KeyringPair, forger?: KeyringPair) {
    const tasks: Task[] = [];
    const signer = {
      address: pair.address,
      forge: false,
      sign(message: Uint8Array) {
        return (this.forge && forger ? forger : pair).sign(message);
      },
    };
    const conn = connectWorker({
      url: coordinator!.url,
      signer,
      logger,
      onTask: (t) => tasks.push(t),
      reconnect: { minMs: 100, maxMs: 500 },
    });
    return { conn, tasks, signer };
  }

  /** A zero update of the tiny model's shapes: valid, and harmless to the aggregate. */
  const zeros = () =>
    paramSpecs(modelConfig('tiny')).map((p) => ({
      name: p.name,
      shape: p.shape,
      data: new Float32Array(p.shape.reduce((a, b) => a * b, 1)),
    }));

  const uploadOf = (task: Task, payload: Uint8Array) => ({
    taskId: task.taskId,
    proposal: task.proposal,
    round: task.round,
    base: task.base.id,
    codec: 'dense',
    payload,
    // What the task stands for: the coordinator derives samples from it and refuses any other claim.
    samples: (({ localSteps, batchSize }) => localSteps * batchSize)(
      JSON.parse(task.hyperparamsJson) as { localSteps: number; batchSize: number },
    ),
    shards: task.shards,
    trainLoss: 5,
  });

  let charlie: ReturnType<typeof manualWorker>;

  it('commits, after a restart, an update acknowledged just before the coordinator was killed', async () => {
    const port = Number(new URL(coordinator!.url).port);
    await workers[1]!.close(); // Charlie's trainer stops; a test-driven Charlie takes his place and stays silent
    charlie = manualWorker(f.workers[1]!, f.workers[2]!);
    await charlie.conn.ready;
    const bob = workers[0]!;
    const id = await approveProposal(f, { minWorkers: 1, roundDeadline: 120 });
    const receipt = await until(() => bob.receipts().find((r) => r.proposal === id));
    await coordinator!.abort();
    charlie.tasks.length = 0;
    expect((await proposal(f, id)).finalized, 'nothing committed before the kill').to.have.length(0);

    coordinator = await start(port);
    // Charlie's task comes again on reconnection; he declines it, so every selected worker has answered.
    const task = await until(() => charlie.tasks.find((t) => t.proposal === id));
    charlie.conn.send({
      kind: 'taskFailed',
      taskFailed: { taskId: task.taskId, code: 'E_TEST', message: 'declined' },
    });
    await until(() => bob.receipts().find((r) => r.proposal === id && r.result)?.result);

    const p = await proposal(f, id);
    expect(p.finalized).to.have.length(1);
    expect(p.finalized[0]!.contributors.map((c) => c.account)).to.deep.equal([f.workers[0]!.address]);
    const after = bob.receipts().find((r) => r.proposal === id)!;
    expect(after.updateHash).to.equal(receipt.updateHash);
    expect(after.result!.verified).to.equal(true);
    expect(after.result!.updatesRoot).to.equal(p.finalized[0]!.updatesRoot);
  });

  it('rejects forged, replayed, misshapen, NaN, oversized, unregistered and garbage input while the round completes', async () => {
    const id = await approveProposal(f, { minWorkers: 2, roundDeadline: 120 });
    const task = await until(() => charlie.tasks.find((t) => t.proposal === id));
    const codeOf = async (p: Promise<unknown>) => {
      try {
        await p;
        return 'accepted';
      } catch (error) {
        return (error as WorkerError).code;
      }
    };
    const conn: WorkerConnection = charlie.conn;
    const good = encodeUpdate(zeros(), { codec: 'dense' });

    charlie.signer.forge = true; // signed by Dave's key, claimed as Charlie's
    expect(await codeOf(conn.upload(uploadOf(task, good)))).to.equal('E_BAD_SIGNATURE');
    charlie.signer.forge = false;

    // Replayed: a signed update for an earlier round of this network.
    expect(await codeOf(conn.upload({ ...uploadOf(task, good), proposal: 0, round: 1 }))).to.equal(
      'E_WRONG_ROUND',
    );

    const misshapen = zeros();
    misshapen[0] = { ...misshapen[0]!, shape: [misshapen[0]!.shape[0]! / 2, misshapen[0]!.shape[1]! * 2] };
    expect(await codeOf(conn.upload(uploadOf(task, encodeUpdate(misshapen, { codec: 'dense' }))))).to.equal(
      'E_UPDATE_SHAPE',
    );

    const nan = new Uint8Array(good);
    new DataView(nan.buffer).setFloat32(nan.length - 4, NaN, true);
    expect(await codeOf(conn.upload(uploadOf(task, nan)))).to.equal('E_UPDATE_NOT_FINITE');

    // Raw sockets: a frame over the limit, and bytes that are no frame at all.
    const raw = async (bytes: Uint8Array) => {
      const ws = new WebSocket(coordinator!.url);
      await new Promise((r) => ws.once('open', r));
      const reply = new Promise<string>((resolve) =>
        ws.once('message', (data: Buffer) => {
          const { frame } = decodeFrame(data);
          resolve(frame.kind === 'error' ? frame.error.code : frame.kind);
        }),
      );
      ws.send(bytes);
      const code = await reply;
      ws.terminate();
      return code;
    };
    expect(await raw(new Uint8Array(300 * 1024))).to.equal('E_FRAME_TOO_LARGE');
    expect(await raw(new Uint8Array([9, 0, 0, 0, 0xff, 0xff, 0xff]))).to.equal('E_FRAME_MALFORMED');

    const eve = runWorker({
      url: coordinator!.url,
      signer: await signerFromSeed('//Eve'),
      cacheDir: join(f.dir, 'eve'),
      logger,
    });
    expect(await codeOf(eve.ready)).to.equal('E_NOT_REGISTERED');
    await eve.close();

    // Charlie finally sends a good update; with Bob's, the round closes and commits.
    const committed = waitFor(onCoordinator, (e) => e.type === 'finalizeRound' && e.proposal === id);
    expect(await codeOf(conn.upload(uploadOf(task, good)))).to.equal('accepted');
    await committed;
    const p = await proposal(f, id);
    expect(p.finalized[0]!.contributors.map((c) => c.account).sort()).to.deep.equal(
      [f.workers[0]!.address, f.workers[1]!.address].sort(),
    );
    expect(
      coordinator!.metrics.value('fedtune_updates_total', {
        outcome: 'rejected',
        code: 'E_UPDATE_NOT_FINITE',
      }),
    ).to.equal(1);
    await charlie.conn.close();
  });

  it('hands a declined task to an idle worker before the deadline', async () => {
    // Charlie and Dave (test-driven) take the round's two slots; Bob's trainer joins after, with no slot left.
    await workers[0]!.close();
    const charlie2 = manualWorker(f.workers[1]!);
    const dave = manualWorker(f.workers[2]!);
    await Promise.all([charlie2.conn.ready, dave.conn.ready]);
    const sent: Extract<CoordinatorEvent, { type: 'taskSent' | 'taskHandedOn' }>[] = [];
    onCoordinator((e) => (e.type === 'taskSent' || e.type === 'taskHandedOn') && sent.push(e));
    const id = await approveProposal(
      f,
      { minWorkers: 1, maxWorkers: 1, roundDeadline: 120 },
      { fedProxMu: 0.01, learningRate: 0.004 },
    );
    const task = await until(() => charlie2.tasks.find((t) => t.proposal === id));
    // The task a worker receives carries the strategy's RoundConfig: the proposal's local training, FedProx mu included.
    expect(JSON.parse(task.hyperparamsJson)).to.include({
      localSteps: 3,
      batchSize: 4,
      learningRate: 0.004,
      optimiser: 'adamw',
      fedProxMu: 0.01,
      gradClipNorm: 1,
      schedule: 'cosine',
    });
    await until(() => dave.tasks.find((t) => t.proposal === id));
    const bob = worker(0);
    await bob.ready;
    expect(sent.filter((e) => e.type === 'taskSent' && e.account === f.workers[0]!.address)).to.have.length(
      0,
    );

    const committed = waitFor(onCoordinator, (e) => e.type === 'finalizeRound' && e.proposal === id);
    charlie2.conn.send({
      kind: 'taskFailed',
      taskFailed: { taskId: task.taskId, code: 'E_DATA_MISSING', message: 'no such data here' },
    });
    await committed;
    const handedOn = sent.findIndex((e) => e.type === 'taskHandedOn' && e.proposal === id);
    expect(handedOn).to.be.greaterThan(-1);
    const toBob = sent
      .slice(handedOn)
      .find((e) => e.type === 'taskSent' && e.account === f.workers[0]!.address);
    expect(toBob, 'the declined slot went to Bob').to.not.equal(undefined);
    if (toBob?.type === 'taskSent') expect(toBob.shards).to.deep.equal(task.shards);
    const p = await proposal(f, id);
    expect(p.finalized[0]!.contributors.map((c) => c.account)).to.deep.equal([f.workers[0]!.address]);
    await Promise.all([charlie2.conn.close(), dave.conn.close()]);
  });

  it('retries a round short of minWorkers with new deadlines, then fails the proposal on chain with the reason', async () => {
    // Only Bob's trainer is still connected; the proposal wants two.
    const retried: number[] = [];
    onCoordinator((e) => e.type === 'roundRetried' && retried.push(e.attempt));
    // Bob's update is the only one that can come: once it is in, each attempt's deadline passes at once.
    const next = (await readState(f)).networks[f.network]!.proposals.length;
    let bobIn = false;
    const skip = (e: CoordinatorEvent) => {
      if (e.proposal < next) return;
      if (e.type === 'updateAccepted') bobIn = true;
      if (bobIn && (e.type === 'updateAccepted' || e.type === 'roundRetried')) clock.skip(3_001);
    };
    onCoordinator(skip);
    const failed = waitFor(onCoordinator, (e) => e.type === 'failRound');
    const id = await approveProposal(f, { minWorkers: 2, roundDeadline: 3 });
    await failed;
    events.off('c', skip);
    const p = await proposal(f, id);
    expect(p.status).to.equal('failed');
    expect(p.failure!.reason).to.match(
      /E_TOO_FEW_UPDATES: round 0: 1 accepted update\(s\), minWorkers is 2, after 3 attempt/,
    );
    expect(retried).to.deep.equal([1, 2]);
    expect(p.finalized).to.have.length(0);
  });

  it('fails, after bounded tries, a proposal whose data this coordinator does not hold, saying how to give it', async () => {
    // A trainer's own data, registered on chain; the coordinator was started without --data for it.
    coordinator ??= await start();
    const path = join(f.dir, 'letters.jsonl');
    writeFileSync(
      path,
      Array.from({ length: 40 }, (_, i) => JSON.stringify({ text: `letter ${i}: the sea was calm` })).join(
        '\n',
      ),
    );
    const own = loadDataset({ name: path });
    const manifest = buildManifest(
      own,
      shardDataset(own, { scheme: 'iid', shards: 2, seed: 0, evalFraction: 0.1 }),
    );
    const manifestPath = join(f.dir, 'letters.json');
    writeFileSync(manifestPath, JSON.stringify(manifest));
    await submit(f.client, {
      signer: f.alice,
      network: f.network,
      calls: [
        { type: 'registerDataset', ...registerDatasetFields(manifest, pathToFileURL(manifestPath).href) },
      ],
    });
    const failed = waitFor(onCoordinator, (e) => e.type === 'failRound');
    const id = await approveProposal(f, { dataset: manifest.root as Hex32, minWorkers: 1 });
    await failed;
    const p = await proposal(f, id);
    expect(p.status).to.equal('failed');
    expect(p.failure!.reason).to.match(/^E_DATASET_NOT_LOCAL: .*--data [^ ]+=PATH/);
  });
});
