// `npm run bench -- verify [--quick]`: the time to verify a round (fetch what it published, recompute the aggregate,
// re-measure the held-out loss, re-execute one contribution) beside the time the round itself took, on the dev chain
// with the real coordinator and two trainers. The goal: verifying the aggregate costs at most 10% of the round.
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import type { CoordinatorEvent } from '../coordinator/index.ts';
import { verifyRound } from '../verify/index.ts';
import { reexecuteContribution } from '../worker/index.ts';
// eslint-disable-next-line fedtune/boundaries -- the dev-chain fixture the round tests use
import { approveProposal, logger, readState, setUp, startRunning, waitFor } from '../test/rounds/helpers.ts';
import type { Bench } from './lib.ts';

const bench: Bench = async ({ quick, report, progress }) => {
  const localSteps = quick ? 40 : 200;
  const f = await setUp('bench-verify');
  const events = new EventEmitter();
  const on = (fn: (e: CoordinatorEvent) => void) => events.on('c', fn);
  const running = await startRunning(f, { evalExamples: 256, onEvent: (e) => events.emit('c', e) });
  try {
    const started = new Map<number, number>();
    on((e) => {
      if (e.type === 'roundStarted') started.set(e.round, performance.now());
    });
    const id = await approveProposal(
      f,
      { rounds: 2, minWorkers: 2, maxWorkers: 2, roundDeadline: 600 },
      { localSteps, batchSize: 16, aggregator: 'fedavgm', updateEncoding: 'int8' },
    );
    progress(`proposal ${id}: 2 rounds of ${localSteps} local steps × 2 trainers (tiny model, int8 updates)`);
    await waitFor(on, (e) => e.type === 'finalizeRound' && e.proposal === id && e.round === 1, 30 * 60_000);
    const roundSeconds = (performance.now() - started.get(1)!) / 1000;
    progress(`round 1 took ${roundSeconds.toFixed(1)} s from its first task to final on chain; verifying it`);
    const net = (await readState(f)).networks[f.network]!;
    const verification = await verifyRound({
      net,
      network: f.network,
      proposal: id,
      round: 1,
      blockHash: async (n) => (await f.client.api.rpc.chain.getBlockHash(n)).toHex(),
      recompute: 1,
      reexecute: reexecuteContribution,
      cacheDir: join(f.dir, 'verify'),
      logger,
      onStep: (s) => progress(`  ${s.step}: ${(s.ms / 1000).toFixed(2)} s — ${s.detail}`),
    });
    if (!verification.ok)
      throw new Error(`the round did not verify: ${verification.code} ${verification.message}`);
    const ms = (names: string[]) =>
      verification.steps.filter((s) => names.includes(s.step)).reduce((n, s) => n + s.ms, 0) / 1000;
    const fetch = ms(['context', 'publication', 'signatures', 'rules', 'updates', 'base']);
    const aggregate = ms(['aggregate']);
    const evaluate = ms(['evaluate']);
    const reexecute = ms(['re-execute']);
    const note = `round 1 of 2 trainers × ${localSteps} steps, tiny model, fedavgm, int8`;
    report({ name: 'round wall time', value: roundSeconds, unit: 's', note });
    report({
      name: 'verify: fetch and check publication',
      value: fetch,
      unit: 's',
      ref: roundSeconds,
      ratio: fetch / roundSeconds,
      note,
    });
    report({
      name: 'verify: recompute aggregate',
      value: aggregate,
      unit: 's',
      ref: roundSeconds,
      ratio: aggregate / roundSeconds,
      note,
    });
    report({
      name: 'verify: re-measure held-out loss',
      value: evaluate,
      unit: 's',
      ref: roundSeconds,
      ratio: evaluate / roundSeconds,
      note,
    });
    const aggregateTotal = fetch + aggregate + evaluate;
    report({
      name: 'verify the aggregate (all but re-execution)',
      value: aggregateTotal,
      unit: 's',
      ref: roundSeconds,
      ratio: aggregateTotal / roundSeconds,
      note: 'goal: ratio <= 0.10',
    });
    report({
      name: 'verify: re-execute one contribution',
      value: reexecute,
      unit: 's',
      ref: roundSeconds,
      ratio: reexecute / roundSeconds,
      note,
    });
  } finally {
    await running.close();
    await f.close();
  }
};

export default bench;
