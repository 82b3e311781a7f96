// Fault trials at CI size: the coordinator process SIGKILLed at random points of five rounds and restarted; no
// acknowledged update is lost, every round completes with all three updates, no round is committed twice, no reward
// is paid without a finalized round.
import { expect } from 'chai';
import { runFaultTrials } from './fault-trials.ts';

describe('fedtune coordinator: SIGKILL at random points of a round, restarted', function () {
  this.timeout(900_000);

  it('completes every round with every acknowledged update, once, across five kills', async () => {
    const summary = await runFaultTrials({
      trials: 5,
      seed: Number(process.env.FAULT_SEED ?? 7),
      progress: (m) => process.stderr.write(`      ${m}\n`),
    });
    for (const t of summary.trials) {
      expect(t.found, `trial ${t.trial} (${t.point}): acknowledged updates committed`).to.equal(
        t.acknowledged,
      );
      // The round completes with all three updates; a trainer may still miss its own receipt when the kill cuts its
      // acknowledgement (seen once in 20 trials): what it holds is never lost, and the committed round has its update.
      expect(t.status, `trial ${t.trial} (${t.point})`).to.equal('completed');
      expect(t.contributors, `trial ${t.trial}: updates in the committed round`).to.equal(3);
    }
    expect(summary.trials.filter((t) => t.killed).length).to.be.greaterThan(0);
    expect(summary.committedTwice).to.equal(0);
    expect(summary.paymentsWithoutRound).to.equal(0);
  });
});
