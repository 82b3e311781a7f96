// A dispute on the dev chain, against the real engine: once upheld, the accused worker gets no further task and its
// next login is refused, while the round runs on with the others.
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { expect } from 'chai';
import { startCoordinator, type Coordinator, type CoordinatorEvent } from '../../coordinator/index.ts';
import { submitChecked, type Hex32 } from '../../pallet-bindings/index.ts';
import { runWorker, type RunningWorker } from '../../worker/index.ts';
import { RawClient, expectError } from '../coordinator/raw-client.ts';
import { approveProposal, logger, proposal, readState, setUp, waitFor, type Fixture } from './helpers.ts';

describe('rounds: an upheld dispute bars a worker from further tasks', function () {
  this.timeout(300_000);
  let f: Fixture;
  let coordinator: Coordinator | null = null;
  const workers: RunningWorker[] = [];
  const events = new EventEmitter();
  const onCoordinator = (fn: (e: CoordinatorEvent) => void) => events.on('c', fn);

  before(async () => {
    f = await setUp('disputes');
  });
  after(async () => {
    await Promise.all(workers.map((w) => w.close()));
    await coordinator?.close();
    await f?.close();
  });

  const worker = (i: number) => {
    const w = runWorker({
      url: coordinator!.url,
      signer: f.workers[i]!,
      cacheDir: join(f.dir, `worker-${i}`),
      logger,
      reconnect: { minMs: 100, maxMs: 500 },
    });
    workers.push(w);
    return w;
  };

  it('gives the barred worker no task in the next proposal, and refuses its login with E_WORKER_BARRED', async () => {
    coordinator = await startCoordinator({
      limits: { maxFrameBytes: 256 * 1024 },
      chain: f.client,
      signer: f.coordinator,
      network: f.network,
      dataDir: join(f.dir, 'coordinator'),
      port: 0,
      logger,
      evalExamples: 32,
      onEvent: (e) => events.emit('c', e),
    });
    const sent: Extract<CoordinatorEvent, { type: 'taskSent' }>[] = [];
    onCoordinator((e) => e.type === 'taskSent' && sent.push(e));
    for (const i of [0, 1, 2]) worker(i);
    const [bob, charlie, dave] = f.workers.map((w) => w.address);

    // Proposal one: all three train.
    const first = await approveProposal(f, { minWorkers: 3, roundDeadline: 60 });
    await waitFor(onCoordinator, (e) => e.type === 'finalizeRound' && e.proposal === first);
    const round = (await proposal(f, first)).finalized[0]!;
    expect(round.contributors.map((c) => c.account).sort()).to.deep.equal([bob, charlie, dave].sort());

    // Alice verifies it, finds Dave's update is not what his task gives, and disputes it. She is the network's one
    // member (quorum 1/1), so her dispute is its own quorum: upheld in the block it lands in.
    const report = JSON.stringify({
      proposal: first,
      round: 0,
      ok: false,
      code: 'E_WORK_MISMATCH',
      worker: dave,
    });
    const evidence = `0x${createHash('sha256').update(report).digest('hex')}` as Hex32;
    const { state } = await submitChecked(f.client, {
      signer: f.alice,
      network: f.network,
      calls: [
        { type: 'dispute', proposal: first, round: 0, accused: dave!, code: 'E_WORK_MISMATCH', evidence },
      ],
      state: await readState(f),
    });
    const net = state.networks[f.network]!;
    expect(net.disputes[0]).to.deep.include({ status: 'upheld', accused: dave, evidence, roles: ['worker'] });
    expect(net.barredWorkers[dave!]).to.deep.include({ dispute: 0, code: 'E_WORK_MISMATCH' });

    // Proposal two: Dave is still connected, but only Bob and Charlie get tasks.
    const second = await approveProposal(f, { minWorkers: 2, roundDeadline: 60 });
    await waitFor(onCoordinator, (e) => e.type === 'finalizeRound' && e.proposal === second);
    expect(
      sent
        .filter((e) => e.proposal === second)
        .map((e) => e.account)
        .sort(),
    ).to.deep.equal([bob, charlie].sort());
    const next = (await proposal(f, second)).finalized[0]!;
    expect(next.contributors.map((c) => c.account).sort()).to.deep.equal([bob, charlie].sort());
    expect(next.rewards.map((r) => r.account)).to.not.include(dave);

    // A new login of Dave's is refused with the bar's code (by hand: the trainer would keep reconnecting).
    const raw = await RawClient.open(coordinator.url);
    try {
      expectError(await raw.authenticate(f.workers[2]!), 'E_WORKER_BARRED');
    } finally {
      raw.ws.close();
    }
  });
});
