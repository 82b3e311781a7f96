// `round verify --recompute` on a top-k proposal: a worker's round-2 update carries the error-feedback residual of its
// rounds 0 and 1, which is not published; under the residual rule the verifier rebuilds it by re-executing the worker's
// earlier contributions, so every contribution of every round verifies bit for bit.
import { join } from 'node:path';
import { EventEmitter } from 'node:events';
import { expect } from 'chai';
import { startCoordinator, type Coordinator, type CoordinatorEvent } from '../../coordinator/index.ts';
import { verifyRound } from '../../verify/index.ts';
import { reexecuteContribution, runWorker, type RunningWorker } from '../../worker/index.ts';
import { approveProposal, logger, readState, setUp, waitFor, type Fixture } from '../rounds/helpers.ts';

describe('round verify: a top-k proposal, its residual rebuilt from earlier rounds', function () {
  this.timeout(300_000);
  let f: Fixture;
  let coordinator: Coordinator;
  const workers: RunningWorker[] = [];
  const events = new EventEmitter();

  before(async () => {
    f = await setUp('verify-topk');
    coordinator = await startCoordinator({
      chain: f.client,
      signer: f.coordinator,
      network: f.network,
      dataDir: join(f.dir, 'coordinator'),
      port: 0,
      logger,
      evalExamples: 32,
      onEvent: (e) => events.emit('c', e),
    });
    for (const i of [0, 1])
      workers.push(
        runWorker({
          url: coordinator.url,
          signer: f.workers[i]!,
          cacheDir: join(f.dir, `worker-${i}`),
          logger,
          reconnect: { minMs: 100, maxMs: 500 },
        }),
      );
  });
  after(async () => {
    await Promise.all(workers.map((w) => w.close()));
    await coordinator?.close();
    await f?.close();
  });

  it('re-executes every contribution of round 2 exactly, with the residual of rounds 0 and 1', async () => {
    const id = await approveProposal(
      f,
      { rounds: 3, minWorkers: 2, maxWorkers: 2 },
      { updateEncoding: 'topk:0.05' },
    );
    await waitFor(
      (fn: (e: CoordinatorEvent) => void) => events.on('c', fn),
      (e) => e.type === 'finalizeRound' && e.proposal === id && e.round === 2,
    );
    const net = (await readState(f)).networks[f.network]!;
    const report = await verifyRound({
      net,
      network: f.network,
      proposal: id,
      round: 2,
      blockHash: async (n) => (await f.client.api.rpc.chain.getBlockHash(n)).toHex(),
      recompute: 2,
      reexecute: reexecuteContribution,
      cacheDir: join(f.dir, 'verify-cache'),
      logger,
    });
    expect(report.code, report.message).to.equal(undefined);
    expect(report.recomputed).to.have.length(2);
    for (const w of report.recomputed) expect(w.distance, w.account).to.equal(0);
  });
});
