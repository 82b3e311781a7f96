// Hierarchical rounds end to end (docs/rounds.md, "Hierarchical rounds"): a parent coordinator and two sub-coordinators
// on the dev chain, each sub with a cohort of two workers; one FedAvg round of a tiny model, committed by the parent in
// one finalizeRound whose contributors and rewards are the four workers, each receipt checked through its cohort's root.
import { join } from 'node:path';
import { expect } from 'chai';
import { startCoordinator, type Coordinator, type CoordinatorEvent } from '../../coordinator/index.ts';
import { runWorker, type RunningWorker } from '../../worker/index.ts';
import {
  approveProposal,
  freeBalance,
  logger,
  proposal,
  setUp,
  until,
  verifyOn,
  waitFor,
  type Fixture,
} from './helpers.ts';

describe('rounds: a parent and two sub-coordinators on the dev chain', function () {
  this.timeout(300_000);
  let f: Fixture & { coordinators: import('../../pallet-bindings/index.ts').KeyringPair[] };
  const coordinators: Coordinator[] = [];
  const workers: RunningWorker[] = [];
  const events: { who: string; e: CoordinatorEvent }[] = [];
  /** Listeners of the parent's events. */
  const onEvent: ((e: CoordinatorEvent) => void)[] = [];

  before(async () => {
    f = await setUp('hierarchy', {
      coordinators: ['//Eve', '//SubB'],
      workers: ['//Worker4'],
      fund: ['//SubB', '//Worker4'],
    });
  });
  after(async () => {
    await Promise.all(workers.map((w) => w.close()));
    await Promise.all(coordinators.map((c) => c.close()));
    await f?.close();
  });

  const start = async (
    who: string,
    signer: Fixture['coordinator'],
    parent?: { url: string; cohort: number },
  ) => {
    const c = await startCoordinator({
      chain: f.client,
      signer,
      network: f.network,
      dataDir: join(f.dir, `coordinator-${who}`),
      port: 0,
      logger,
      evalExamples: 32,
      parent,
      onEvent: (e) => {
        events.push({ who, e });
        if (who === 'parent') for (const fn of onEvent) fn(e);
      },
    });
    coordinators.push(c);
    return c;
  };

  it('commits one finalizeRound that rewards every cohort worker, with receipts through the cohort roots', async () => {
    const parent = await start('parent', f.coordinator);
    const subA = await start('a', f.coordinators[0]!, { url: parent.url, cohort: 2 });
    const subB = await start('b', f.coordinators[1]!, { url: parent.url, cohort: 2 });
    // Bob and Charlie train for sub A, Dave and Worker4 for sub B; receipts are checked against the chain.
    const chain = {
      finalizedRound: async (p: number, r: number) => (await proposal(f, p)).finalized[r] ?? null,
    };
    const cohortOf = [subA, subA, subB, subB];
    f.workers.forEach((signer, i) =>
      workers.push(
        runWorker({
          url: cohortOf[i]!.url,
          signer,
          cacheDir: join(f.dir, `worker-${i}`),
          logger,
          chain,
          reconnect: { minMs: 100, maxMs: 500 },
        }),
      ),
    );
    await Promise.all(workers.map((w) => w.ready));
    const before = await Promise.all(f.workers.map((w) => freeBalance(f, w.address)));

    const id = await approveProposal(
      f,
      { minWorkers: 2, maxWorkers: 2, rewardPerRound: '4000000000000' },
      { aggregatorOptions: '{"clip":null}' },
    );
    const done = await waitFor<CoordinatorEvent>(
      (fn) => void onEvent.push(fn),
      (e) => e.type === 'finalizeRound' || e.type === 'failRound',
      240_000,
    ).catch(() => null);
    const p = await proposal(f, id);
    expect(done?.type, JSON.stringify(events.map((x) => [x.who, x.e.type]))).to.equal('finalizeRound');
    expect(p.status, JSON.stringify(events.filter((x) => x.e.type.startsWith('update')))).to.equal(
      'completed',
    );
    const round = p.finalized[0]!;
    expect(round.coordinator).to.equal(f.coordinator.address);
    // Every worker of both cohorts is a contributor, with the samples its task stands for (3 steps x batch 4).
    expect(round.contributors.map((c) => c.account).sort()).to.deep.equal(
      f.workers.map((w) => w.address).sort(),
    );
    for (const c of round.contributors) expect(c.samples).to.equal(12);
    // Each worker's shards are its own; together they are the two cohorts' tasks.
    const shards = round.contributors.flatMap((c) => c.shards);
    expect(new Set(shards).size).to.equal(shards.length);
    // The reward, split by samples, reaches all four in the parent's one batch.
    expect(round.rewards.map((r) => r.account).sort()).to.deep.equal(f.workers.map((w) => w.address).sort());
    for (const r of round.rewards) expect(r.amount).to.equal('1000000000000');
    const after = await Promise.all(f.workers.map((w) => freeBalance(f, w.address)));
    after.forEach((b, i) => expect(b - before[i]!).to.equal(1_000_000_000_000n));
    // The parent accepted two cohort updates, not four worker updates.
    const parentAccepted = events.filter((x) => x.who === 'parent' && x.e.type === 'updateAccepted');
    expect(parentAccepted.map((x) => (x.e as { account: string }).account).sort()).to.deep.equal(
      f.coordinators.map((c) => c.address).sort(),
    );
    // Each worker's receipt verifies through its cohort's root to the on-chain updatesRoot.
    const receipts = await until(() => {
      const all = workers.flatMap((w) => w.receipts());
      return all.length === 4 && all.every((r) => r.result !== undefined) ? all : undefined;
    }, 60_000);
    for (const r of receipts) {
      expect(r.result!.verified, r.result!.failure).to.equal(true);
      expect(r.result!.checkedAgainst).to.equal('chain');
      expect(r.result!.updatesRoot).to.equal(round.updatesRoot);
    }
    // `round verify` repeats a hierarchical round: custody through the cohorts, each cohort's aggregate from its
    // workers' updates (served by the sub-coordinators), the parent's aggregate from the cohorts', the evaluation.
    const report = await verifyOn(f, id, 0);
    expect(report.ok, JSON.stringify(report.steps)).to.equal(true);
    for (const name of ['cohorts', 'cohort aggregates', 'aggregate', 'evaluate'])
      expect(report.steps.find((s) => s.step === name)?.ok, name).to.equal(true);
    // Re-executing its workers is not built yet, and it says so.
    const recomputed = await verifyOn(f, id, 0, 1);
    expect(recomputed.ok).to.equal(false);
    expect(recomputed.code).to.equal('E_HIERARCHY_UNCHECKED');
    expect(round.metrics.extra.find((m) => m.name === 'cohorts')?.value).to.equal(2);
  });
});
