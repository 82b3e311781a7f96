// The round engine end to end: a devnet, a coordinator and three workers in one process, a tiny model on moby-dick.
import { join } from 'node:path';
import { EventEmitter } from 'node:events';
import { expect } from 'chai';
import { startCoordinator, type Coordinator, type CoordinatorEvent } from '../../coordinator/engine.ts';
import { runWorker, type RunningWorker, type WorkerEvent } from '../../worker/runner.ts';
import { approveProposal, freeBalance, logger, proposal, setUp, waitFor, type Fixture } from './helpers.ts';

describe('rounds: coordinator and workers on the dev chain', function () {
  this.timeout(300_000);
  let f: Fixture;
  let coordinator: Coordinator | null = null;
  const workers: RunningWorker[] = [];
  const events = new EventEmitter();
  const onCoordinator = (fn: (e: CoordinatorEvent) => void) => events.on('c', fn);

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
      chain: f.client,
      signer: f.coordinator,
      network: f.network,
      dataDir: join(f.dir, 'coordinator'),
      port,
      logger,
      evalExamples: 64,
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
    const id = await approveProposal(f, { rounds: 2, roundDeadline: 25 });
    const before = await Promise.all(f.workers.map((w) => freeBalance(f, w.address)));
    const results: WorkerEvent[] = [];
    worker(0, (e) => results.push(e));
    worker(1, (e) => results.push(e));
    // Dave's connection is cut in the middle of his first upload, and he never comes back.
    let cut = false;
    const dave = worker(
      2,
      (e) => {
        if (e.type === 'upload' && !cut && e.sent < e.total) {
          cut = true;
          void dave.close();
        }
      },
      8 * 1024,
    );
    const committed: Extract<CoordinatorEvent, { type: 'committed' }>[] = [];
    onCoordinator((e) => e.type === 'committed' && committed.push(e));
    await waitFor(onCoordinator, (e) => e.type === 'committed' && e.round === 1);
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
    // The coordinator serves the committed checkpoint by its id.
    expect(await coordinator.store.has(r1!.checkpoint.id)).to.equal(true);
  });
});
