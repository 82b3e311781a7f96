// `round verify`'s steps for a hierarchical round (docs/rounds.md, "Hierarchical rounds"): the chain of custody through
// the cohorts in place of the publication, signatures and rules steps, and each cohort's aggregate repeated from its
// workers' updates before the parent's aggregate is.
import { cryptoWaitReady } from '@polkadot/util-crypto';
import type { FinalizedRound, RoundProposal } from '../pallet-bindings/index.ts';
import type { Base } from './base.ts';
import { checkCohortAggregates, checkCustody } from './cohort.ts';
import type { RoundContext } from './context.ts';
import { proposalFit, proposalSpec } from './derive.ts';
import type { RoundPublication } from './publication.ts';
import { taskSamples } from './task.ts';
import { VerifyFailure, type VerifyRoundParams } from './types.ts';

/** The parent's publication, each update's signature (and its workers'), the roots, contributors and rewards. */
export async function cohortCustody(
  params: VerifyRoundParams,
  p: RoundProposal,
  f: FinalizedRound,
  ctx: RoundContext,
): Promise<{ value: RoundPublication; detail: string }> {
  await cryptoWaitReady();
  const checked = await checkCustody({
    network: params.network,
    proposal: params.proposal,
    round: params.round,
    f,
    rewardPerRound: p.round.rewardPerRound,
    sources: ctx.sources,
    codec: ctx.encoding.codec,
    samples: taskSamples(ctx.fit),
  });
  if (!checked.ok) throw new VerifyFailure(checked.code, checked.message, checked.culprit);
  return { value: checked.publication, detail: checked.detail };
}

/** Each cohort's aggregate repeated from its workers' updates, byte for byte. */
export async function cohortMeans(
  params: VerifyRoundParams,
  p: RoundProposal,
  payloads: Map<string, Uint8Array>,
  base: Base,
  ctx: RoundContext,
): Promise<{ value: void; detail: string }> {
  const checked = await checkCohortAggregates({
    payloads,
    spec: proposalSpec(p),
    model: base.model,
    round: params.round,
    fit: proposalFit(p),
    codec: ctx.encoding.codec,
    sources: ctx.sources,
  });
  if (!checked.ok) throw new VerifyFailure(checked.code, checked.message, checked.culprit);
  return { value: undefined, detail: checked.detail };
}

/** What `round verify` does not repeat of a hierarchical round yet. */
export function reexecuteUnsupported(): never {
  throw new VerifyFailure(
    'E_HIERARCHY_UNCHECKED',
    "re-executing a hierarchical round's workers is not built yet: its custody, cohort aggregates, aggregate and evaluation check out",
    null,
  );
}
