// bench scale's hierarchical variant: the bench's workers split over sub-coordinators (each its own process, each
// worker client process dialling its own sub), one parent committing the round; the same figures as the single
// coordinator's, each with that figure, measured in the same run, as `ref`.
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { ChainClient, Hex32, KeyringPair } from '../../pallet-bindings/index.ts';
import type { BenchContext } from '../lib.ts';
import { child, peakRss, type Child, type Line } from './processes.ts';
import { proposeScaleRound } from './propose.ts';

/** The single coordinator's figures, measured before on the same chain with the same workers. */
export interface SingleFigures {
  seconds: number;
  updatesPerSecond: number;
  cpuPerUpdateMs: number;
  /** The coordinator's CPU from its first task to finalizeRound final. */
  cpuRoundMs: number;
  rssMB: number | null;
  bytesInMB: number;
}

export interface HierarchyParameters {
  client: ChainClient;
  chainUrl: string;
  /** A member of the network, who proposes and votes. */
  signer: KeyringPair;
  network: Hex32;
  dataset: Hex32;
  /** The id the hierarchical round's proposal gets on chain. */
  proposal: number;
  workers: number;
  /** One sub-coordinator per seed; each account is one of the network's coordinators on chain. */
  subSeeds: string[];
  dir: string;
  /** Told of every process started, so that the bench stops them whatever happens. */
  spawned(procs: ChildProcess[]): void;
  single: SingleFigures;
}

const cpu = (l: Line | undefined) => Number(l?.cpuMs);
const mb = (bytes: number | null) => (bytes === null ? null : bytes / 1e6);

export async function runHierarchy(ctx: BenchContext, h: HierarchyParameters): Promise<void> {
  const k = h.subSeeds.length;
  const per = Math.ceil(h.workers / k);
  const parent = child('coordinator.ts', [h.chainUrl, h.network, join(h.dir, 'parent')]);
  h.spawned([parent.proc]);
  await parent.until('the parent to listen', () => parent.event('listening') !== undefined);
  const parentUrl = parent.event('listening')!.url as string;
  const subs = h.subSeeds.map((seed, i) =>
    child('coordinator.ts', [h.chainUrl, h.network, join(h.dir, `sub-${i}`), seed, parentUrl, String(per)]),
  );
  h.spawned(subs.map((s) => s.proc));
  for (const s of subs) await s.until('a sub to listen', () => s.event('listening') !== undefined);
  // Worker i of the bench is in cohort floor(i / per), its client process dialling that cohort's sub.
  const clients = subs.map((s, i) =>
    child('workers.ts', [
      s.event('listening')!.url as string,
      String(i * per),
      String(Math.min(per, h.workers - i * per)),
    ]),
  );
  h.spawned(clients.map((c) => c.proc));
  for (const c of clients) await c.until('workers to connect', () => c.event('connected') !== undefined);
  ctx.progress(
    `${h.workers} workers connected to ${k} sub-coordinators, ${per} each, one client process each`,
  );

  await proposeScaleRound(h.client, {
    signer: h.signer,
    network: h.network,
    dataset: h.dataset,
    proposal: h.proposal,
    slots: k,
    workers: h.workers,
  });
  ctx.progress('hierarchical proposal approved; the round runs');
  const all: Child[] = [parent, ...subs, ...clients];
  await parent
    .until('finalizeRound at the parent', () => {
      const failed = parent.event('failRound');
      if (failed) throw new Error(`bench scale: the parent failed the round: ${String(failed.reason)}`);
      return parent.event('finalizeRound') !== undefined;
    })
    .catch((error: Error) => {
      throw new Error(
        `${error.message}\n${all
          .slice(1)
          .map((c) => c.summary())
          .join('\n')}`,
      );
    });
  for (const c of clients) await c.until('every acknowledgement', () => c.event('done') !== undefined);
  for (const s of subs) await s.until('the parent’s result', () => s.event('cohortSubmitted') !== undefined);
  const parentRss = mb(peakRss(parent.proc.pid!));
  const subRss = subs.map((s) => mb(peakRss(s.proc.pid!)));

  const started = parent.event('roundStarted')!;
  const final = parent.event('finalizeRound')!;
  const seconds = (final.at - started.at) / 1000;
  const accepted = subs.flatMap((s) => s.lines.filter((l) => l.type === 'updateAccepted'));
  const lastAck = Math.max(...accepted.map((l) => l.at));
  const cohortUpdates = parent.lines.filter((l) => l.type === 'updateAccepted');
  const lastCohortLine = cohortUpdates.reduce((a, b) => (b.at > a.at ? b : a));
  const lastCohort = lastCohortLine.at;
  const closed = parent.event('roundClosed')!;
  const since = (at: number) => `+${((at - started.at) / 1000).toFixed(2)} s`;
  const s = h.single;
  const who = `${h.workers} workers over ${k} sub-coordinators (${per} each, one client process each), one parent`;
  ctx.report({
    name: `hierarchical round (${k} subs): first task to finalizeRound final`,
    value: seconds,
    unit: 's',
    ref: s.seconds,
    ratio: seconds / s.seconds,
    note:
      `${who}; ref: one coordinator, same run. Last worker acknowledgement ${since(lastAck)}, last cohort update ` +
      `accepted by the parent ${since(lastCohort)}, roundClosed ${since(closed.at)}, final ${since(final.at)}; ` +
      `${k + 1} coordinator processes, ${k} client processes and the chain share this machine's cores`,
  });
  const updatesPerSecond = accepted.length / ((lastAck - started.at) / 1000);
  ctx.report({
    name: 'hierarchical: updates accepted',
    value: updatesPerSecond,
    unit: 'updates/s',
    ref: s.updatesPerSecond,
    ratio: updatesPerSecond / s.updatesPerSecond,
    note: `${accepted.length} worker updates over the subs, the parent's first task to the last worker acknowledgement`,
  });
  // Per sub: its CPU from its first task to the parent's result (its cohort's accepts, aggregate, upload; waiting
  // costs next to none), and per update.
  const subCpu = subs.map((x) => cpu(x.event('cohortSubmitted')) - cpu(x.event('roundStarted')));
  const subAccepted = subs.map((x) => x.lines.filter((l) => l.type === 'updateAccepted').length);
  const subAcceptCpu = subs.map((x, i) => {
    const acks = x.lines.filter((l) => l.type === 'updateAccepted');
    return (cpu(acks.at(-1)) - cpu(x.event('roundStarted'))) / subAccepted[i]!;
  });
  const perUpdate = subAcceptCpu.reduce((a, b) => a + b, 0) / k;
  ctx.report({
    name: 'hierarchical: sub CPU per update',
    value: perUpdate,
    unit: 'ms',
    ref: s.cpuPerUpdateMs,
    ratio: perUpdate / s.cpuPerUpdateMs,
    note:
      `mean over the subs of each one's CPU (crypto threads included) from its first task to its last acknowledgement, ` +
      `per update (${subAcceptCpu.map((x) => x.toFixed(1)).join(', ')} ms); ref: the single coordinator's`,
  });
  const parentCpu = cpu(final) - cpu(started);
  const parentSteps = [lastCohortLine, closed, final].map(
    (l, i, a) => cpu(l) - cpu(i === 0 ? started : a[i - 1]),
  );
  const critical = Math.max(...subCpu) + parentCpu;
  ctx.report({
    name: 'hierarchical: CPU on the critical path',
    value: critical / 1000,
    unit: 's',
    ref: s.cpuRoundMs / 1000,
    ratio: critical / s.cpuRoundMs,
    note:
      `the busiest sub's CPU for its cohort round (${(Math.max(...subCpu) / 1000).toFixed(2)} s: accepts, cohort aggregate, ` +
      `upload) + the parent's from its first task to final (${(parentCpu / 1000).toFixed(2)} s: to the last cohort update ` +
      `accepted ${(parentSteps[0]! / 1000).toFixed(2)} s (its members' signatures checked on the event loop), close ` +
      `${(parentSteps[1]! / 1000).toFixed(2)} s, commit ${(parentSteps[2]! / 1000).toFixed(2)} s): ` +
      `about the round's wall time with each coordinator on a core of its own, less the chain's blocks; ` +
      `ref: the single coordinator's CPU over its round. All subs together: ${(subCpu.reduce((a, b) => a + b, 0) / 1000).toFixed(2)} s`,
  });
  if (parentRss !== null)
    ctx.report({
      name: 'hierarchical: parent peak RSS',
      value: parentRss,
      unit: 'MB',
      ...(s.rssMB === null ? {} : { ref: s.rssMB, ratio: parentRss / s.rssMB }),
      note: `VmHWM of the parent process; ref: the single coordinator's`,
    });
  const largest = Math.max(...subRss.map((x) => x ?? 0));
  if (largest > 0)
    ctx.report({
      name: 'hierarchical: largest sub peak RSS',
      value: largest,
      unit: 'MB',
      ...(s.rssMB === null ? {} : { ref: s.rssMB, ratio: largest / s.rssMB }),
      note: `VmHWM of each sub: ${subRss.map((x) => (x ?? 0).toFixed(0)).join(', ')} MB; ref: the single coordinator's`,
    });
  const bytesIn = cohortUpdates.reduce((sum, l) => sum + Number(l.bytes), 0) / 1e6;
  ctx.report({
    name: 'hierarchical: bytes in at the parent',
    value: bytesIn,
    unit: 'MB',
    ref: s.bytesInMB,
    ratio: bytesIn / s.bytesInMB,
    note:
      `${cohortUpdates.length} cohort updates (a dense float32 aggregate and its members' header each); ` +
      `ref: the single coordinator's, ${h.workers} top-k updates`,
  });
}
