// `round verify` against the dev chain and the real engine: an honest round verifies with every contribution
// re-executed; a worker that uploads noise is named; an update no source serves is E_UPDATE_UNAVAILABLE.
import { join } from 'node:path';
import { expect } from 'chai';
import { encodeUpdate } from '../../aggregation/index.ts';
import type { Coordinator, CoordinatorEvent } from '../../coordinator/index.ts';
import { modelConfig, paramSpecs } from '../../model/index.ts';
import type { Task } from '../../proto/index.ts';
import type { VerifyReport } from '../../verify/index.ts';
import {
  connectWorker,
  fetchBaseCheckpoint,
  reexecuteTask,
  verifiedShardRecords,
} from '../../worker/index.ts';
import { datasetForManifest, type DatasetManifest } from '../../datasets/index.ts';
import { readFileSync } from 'node:fs';
import {
  approveProposal,
  logger,
  proposal,
  setUp,
  startRunning,
  until,
  verifyOn,
  waitFor,
  type Fixture,
} from '../rounds/helpers.ts';
import { inProcess } from '../run-cli.ts';
import { EventEmitter } from 'node:events';

describe('round verify: repeating a round from its published updates', function () {
  this.timeout(300_000);
  let f: Fixture;
  let coordinator: Coordinator;
  let running: Awaited<ReturnType<typeof startRunning>> | undefined;
  const events = new EventEmitter();
  const onCoordinator = (fn: (e: CoordinatorEvent) => void) => events.on('c', fn);
  let honest: number;

  const verify = (id: number, round: number, recompute = 0) => verifyOn(f, id, round, recompute);

  /** Dave, driven by the test: he takes tasks and uploads what the test makes him. */
  const manualDave = () => {
    const dave = f.workers[2]!;
    const tasks: Task[] = [];
    const conn = connectWorker({
      url: coordinator.url,
      signer: { address: dave.address, sign: (m: Uint8Array) => dave.sign(m) },
      logger,
      onTask: (t) => tasks.push(t),
      reconnect: { minMs: 100, maxMs: 500 },
    });
    return { dave, tasks, conn };
  };

  before(async () => {
    f = await setUp('verify');
    running = await startRunning(f, { onEvent: (e) => events.emit('c', e) });
    coordinator = running.coordinator;
    honest = await approveProposal(f, { rounds: 2, minWorkers: 2, maxWorkers: 2 }, { aggregator: 'fedavgm' });
    await waitFor(onCoordinator, (e) => e.type === 'finalizeRound' && e.proposal === honest && e.round === 1);
  });
  after(async () => {
    await running?.close();
    await f?.close();
  });

  it('verifies an honest round, re-executing every contribution, from round 0 and from a momentum state', async () => {
    for (const round of [0, 1]) {
      const report = await verify(honest, round, 2);
      expect(report.code, report.message).to.equal(undefined);
      expect(report.ok).to.equal(true);
      expect(report.steps.map((s) => s.step)).to.deep.equal([
        'context',
        'publication',
        'signatures',
        'rules',
        'updates',
        'base',
        'aggregate',
        'evaluate',
        're-execute',
      ]);
      expect(report.recomputed.map((w) => w.account).sort(), JSON.stringify(report.steps)).to.deep.equal(
        [f.workers[0]!.address, f.workers[1]!.address].sort(),
      );
      expect(report.evalLoss!.measured).to.be.closeTo(report.evalLoss!.committed, report.evalLoss!.tolerance);
    }
    // The round-1 checkpoint names the FedAvgM momentum it leaves for round 2.
    const p = await proposal(f, honest);
    const manifest = await coordinator.store.getManifest(p.finalized[1]!.checkpoint.id);
    expect(manifest!.state).to.match(/^0x[0-9a-f]{64}$/);
  });

  it('prints the checks as a table, or JSON, from the CLI', async () => {
    const run = await inProcess(
      ['round', 'verify', '--network', f.network, '--proposal', String(honest), '--round', '1', '--json'],
      { FEDTUNE_CHAIN: f.devnet.url },
    );
    expect(run.status, run.stderr).to.equal(0);
    const report = JSON.parse(run.stdout) as VerifyReport;
    expect(report.ok).to.equal(true);
    const bad = await inProcess([
      'round',
      'verify',
      '--network',
      f.network,
      '--proposal',
      '0',
      '--round',
      '-1',
    ]);
    expect(bad.status).to.equal(2);
    expect(bad.stderr).to.match(/E_USAGE.*--round/);
  });

  it('says E_UPDATE_UNAVAILABLE, naming no worker, when no source serves an update', async () => {
    const p = await proposal(f, honest);
    const body = await fetch(`${coordinator.httpUrl}/rounds/${honest}/0`);
    const pub = (await body.json()) as { updates: { payloadSha256: string }[] };
    const hash = pub.updates[0]!.payloadSha256;
    const path = coordinator.store.blobPath(hash);
    const { readFile, writeFile } = await import('node:fs/promises');
    const saved = await readFile(path);
    await coordinator.store.deleteBlob(hash);
    try {
      const report = await verify(honest, 0);
      expect(report.ok).to.equal(false);
      expect(report.code).to.equal('E_UPDATE_UNAVAILABLE');
      expect(report.culprit).to.equal(p.finalized[0]!.coordinator);
    } finally {
      await writeFile(path, saved);
    }
  });

  it('names a worker that uploaded noise of a trained update’s size', async () => {
    const { dave, tasks, conn } = manualDave();
    try {
      await conn.ready;
      const id = await approveProposal(f, { rounds: 1, minWorkers: 3, maxWorkers: 3 });
      const task = await until(() => tasks.find((t) => t.proposal === id));
      // Noise the size of a small trained update, in the task's shapes.
      let seed = 7;
      const noise = paramSpecs(modelConfig('tiny')).map((p) => ({
        name: p.name,
        shape: p.shape,
        data: Float32Array.from({ length: p.shape.reduce((a, b) => a * b, 1) }, () => {
          seed = (seed * 1103515245 + 12345) % 2 ** 31;
          return (seed / 2 ** 31 - 0.5) * 1e-3;
        }),
      }));
      const hyper = JSON.parse(task.hyperparamsJson) as { localSteps: number; batchSize: number };
      await conn.upload({
        taskId: task.taskId,
        proposal: task.proposal,
        round: task.round,
        base: task.base.id,
        codec: 'dense',
        payload: encodeUpdate(noise, { codec: 'dense' }),
        samples: hyper.localSteps * hyper.batchSize,
        shards: task.shards,
        trainLoss: 4,
      });
      await waitFor(onCoordinator, (e) => e.type === 'finalizeRound' && e.proposal === id);
      const cheap = await verify(id, 0);
      expect(cheap.ok, 'the aggregate itself is honest').to.equal(true);
      const report = await verify(id, 0, 3);
      expect(report.ok).to.equal(false);
      expect(report.code).to.equal('E_WORK_MISMATCH');
      expect(report.culprit).to.equal(dave.address);
      const named = report.recomputed.find((w) => w.account === dave.address)!;
      expect(named.distance).to.be.greaterThan(named.threshold);
    } finally {
      await conn.close();
    }
  });

  it('names a worker that trained on another shard than its task named', async () => {
    const { dave, tasks, conn } = manualDave();
    try {
      await conn.ready;
      const id = await approveProposal(f, { rounds: 1, minWorkers: 3, maxWorkers: 3 });
      const task = await until(() => tasks.find((t) => t.proposal === id));
      // Dave trains for real, with his task's seed and hyper-parameters, but on shards his task did not name.
      const manifest = JSON.parse(readFileSync(join(f.dir, 'moby.json'), 'utf8')) as DatasetManifest;
      const other = [0, 1, 2, 3, 4, 5].filter((s) => !task.shards.includes(s)).slice(0, task.shards.length);
      const base = await fetchBaseCheckpoint({ task, cacheDir: join(f.dir, 'dave'), logger });
      const run = await reexecuteTask({
        task: { ...task, shards: other },
        baseCheckpoint: base,
        records: verifiedShardRecords(datasetForManifest(manifest), manifest, task.datasetRoot, other),
      });
      await conn.upload({
        taskId: task.taskId,
        proposal: task.proposal,
        round: task.round,
        base: task.base.id,
        codec: run.codec,
        payload: run.payload,
        samples: run.samples,
        shards: task.shards,
        trainLoss: run.trainLoss,
      });
      await waitFor(onCoordinator, (e) => e.type === 'finalizeRound' && e.proposal === id);
      const report = await verify(id, 0, 3);
      expect(report.code).to.equal('E_WORK_MISMATCH');
      expect(report.culprit).to.equal(dave.address);
    } finally {
      await conn.close();
    }
  });
});
