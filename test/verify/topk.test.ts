// `round verify --recompute` on a top-k proposal: a worker's round-2 update carries the error-feedback residual of its
// rounds 0 and 1, which is not published; under the residual rule the verifier rebuilds it by re-executing the worker's
// earlier contributions, so every contribution of every round verifies bit for bit.
import { EventEmitter } from 'node:events';
import { expect } from 'chai';
import type { CoordinatorEvent } from '../../coordinator/index.ts';
import { approveProposal, setUp, startRunning, verifyOn, waitFor, type Fixture } from '../rounds/helpers.ts';

describe('round verify: a top-k proposal, its residual rebuilt from earlier rounds', function () {
  this.timeout(300_000);
  let f: Fixture;
  let running: Awaited<ReturnType<typeof startRunning>> | undefined;
  const events = new EventEmitter();

  before(async () => {
    f = await setUp('verify-topk');
    running = await startRunning(f, { onEvent: (e) => events.emit('c', e) });
  });
  after(async () => {
    await running?.close();
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
    const report = await verifyOn(f, id, 2, 2);
    expect(report.code, report.message).to.equal(undefined);
    expect(report.recomputed).to.have.length(2);
    for (const w of report.recomputed) expect(w.distance, w.account).to.equal(0);
  });
});
