// `npm run bench -- faults [--quick]`: the coordinator SIGKILLed at seeded random points of 20 rounds (5 with
// --quick) and restarted; prints trials, restarts survived, updates acknowledged vs found after recovery, rounds
// committed twice and payments without a finalized round.
import type { Bench } from './lib.ts';
// eslint-disable-next-line fedtune/boundaries -- one harness for the CI-size test and this full-size bench
import { runFaultTrials } from '../test/rounds/fault-trials.ts';

const bench: Bench = async ({ quick, report, progress }) => {
  const trials = quick ? 5 : 20;
  const summary = await runFaultTrials({ trials, seed: 1, progress });
  const sum = (k: 'restarts' | 'acknowledged' | 'found') => summary.trials.reduce((n, t) => n + t[k], 0);
  report({ name: 'faults.trials', value: summary.trials.length, unit: 'rounds' });
  report({ name: 'faults.kills', value: summary.trials.filter((t) => t.killed).length, unit: 'SIGKILLs' });
  report({ name: 'faults.restarts_survived', value: sum('restarts'), unit: 'restarts' });
  report({ name: 'faults.updates_acknowledged', value: sum('acknowledged'), unit: 'updates' });
  report({
    name: 'faults.updates_found_after_recovery',
    value: sum('found'),
    unit: 'updates',
    ref: sum('acknowledged'),
    ratio: sum('found') / Math.max(1, sum('acknowledged')),
  });
  report({ name: 'faults.rounds_committed_twice', value: summary.committedTwice, unit: 'rounds' });
  report({
    name: 'faults.payments_without_finalized_round',
    value: summary.paymentsWithoutRound,
    unit: 'batches',
  });
  const mean = summary.trials.reduce((n, t) => n + t.seconds, 0) / Math.max(1, summary.trials.length);
  report({ name: 'faults.round_seconds_mean', value: mean, unit: 's' });
};
export default bench;
