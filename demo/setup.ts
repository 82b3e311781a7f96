// The demo's plumbing that is not a step of it: funding extra trainers, following the coordinator's events, and the
// held-out labels a classifier is scored on.
import { readFileSync } from 'node:fs';
import { signerFromSeed, type ChainClient } from '../pallet-bindings/index.ts';
import { DemoError, json, type Service } from './process.ts';

export const PLANCK_PER_ROC = 10n ** 12n;

/**
 * The labels of the held-out e-mails the coordinator scores: the same evenly spaced selection as heldOutExamples (one
 * classification example per record), read from the manifest `dataset shard` wrote.
 */
export function heldOutLabels(manifestFile: string, maxExamples: number): string[] {
  const manifest = json<{ records: { label?: string }[]; eval: { records: number[] } }>(
    readFileSync(manifestFile, 'utf8'),
  );
  const all = manifest.eval.records;
  const n = Math.min(all.length, Math.max(1, maxExamples));
  return Array.from(
    { length: n },
    (_, i) => manifest.records[all[Math.floor((i * all.length) / n)]!]!.label!,
  );
}

/**
 * Prints the coordinator's round events; returns a reader of the seconds spent from tasks sent to round closed, and
 * each classifier proposal's round-0 base accuracy (reported in the event, not on chain).
 */
export function watchCoordinator(coordinator: Service, step: (text: string) => void) {
  const sent = new Map<string, number>();
  const baseAccuracy = new Map<number, number>();
  let seconds = 0;
  coordinator.onLine((line) => {
    const e = JSON.parse(line) as Record<string, unknown>;
    const key = `${e.proposal}:${e.round}`;
    if (e.type === 'taskSent' && !sent.has(key)) sent.set(key, Date.now());
    else if (e.type === 'roundStarted')
      step(`  proposal ${e.proposal} round ${e.round}: ${e.tasks} tasks sent`);
    else if (e.type === 'roundClosed') {
      const from = sent.get(key);
      if (from !== undefined) seconds += (Date.now() - from) / 1000;
      const before = e.baseEvalLoss !== null ? ` (before: ${(e.baseEvalLoss as number).toFixed(4)})` : '';
      if (typeof e.baseAccuracy === 'number') baseAccuracy.set(e.proposal as number, e.baseAccuracy);
      const accuracy =
        typeof e.accuracy === 'number'
          ? `; accuracy ${e.accuracy.toFixed(3)}${typeof e.baseAccuracy === 'number' ? ` (before: ${e.baseAccuracy.toFixed(3)})` : ''}`
          : '';
      step(
        `  proposal ${e.proposal} round ${e.round}: ${e.accepted} updates aggregated; eval loss ${(e.evalLoss as number).toFixed(4)}${before}${accuracy}`,
      );
    } else if (e.type === 'finalizeRound')
      step(
        `  proposal ${e.proposal} round ${e.round} committed in block ${e.blockNumber}, ${(e.rewards as unknown[]).length} rewards paid`,
      );
    else if (e.type === 'updateRejected' || e.type === 'failRound') step(`  ${line}`);
  });
  return { trainingSeconds: () => seconds, baseAccuracy };
}

/** Funds trainer accounts beyond the dev accounts, in one batch. */
export async function fund(
  client: ChainClient,
  from: Awaited<ReturnType<typeof signerFromSeed>>,
  seeds: string[],
) {
  if (seeds.length === 0) return;
  const pairs = await Promise.all(seeds.map((s) => signerFromSeed(s)));
  const tx = client.api.tx.utility.batchAll(
    pairs.map((p) => client.api.tx.balances.transferKeepAlive(p.address, 1000n * PLANCK_PER_ROC)),
  );
  await new Promise<void>((resolvePromise, reject) => {
    void tx
      .signAndSend(from, ({ status, dispatchError }) => {
        if (dispatchError)
          reject(new DemoError('E_DEMO_FUND', `funding trainers failed: ${dispatchError.toString()}`));
        else if (status.isFinalized) resolvePromise();
      })
      .catch(reject);
  });
}
