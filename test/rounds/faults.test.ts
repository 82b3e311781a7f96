// Fault trials at CI size: the coordinator process SIGKILLed at random points of five rounds and restarted; no
// acknowledged update is lost, no round is committed twice, no reward is paid without a finalized round.
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
      expect(t.acknowledged, `trial ${t.trial}: every trainer was acknowledged`).to.equal(3);
    }
    expect(summary.trials.filter((t) => t.killed).length).to.be.greaterThan(0);
    expect(summary.committedTwice).to.equal(0);
    expect(summary.paymentsWithoutRound).to.equal(0);
  });
});
