// The committed checkpoint re-derived: the published updates aggregated on the base in leaf order must give its id
// and credit its contributors, and its held-out loss must be the committed one.
import { sha256Hex } from '../checkpoints/index.ts';
import type { Model } from '../model/index.ts';
import type { FinalizedRound, RoundProposal } from '../pallet-bindings/index.ts';
import type { Base } from './base.ts';
import { decodeCohortPayload, isCohortPayload } from './cohort.ts';
import type { RoundContext } from './context.ts';
import {
  deriveAggregate,
  evaluateHeldOut,
  noiseSeed,
  proposalFit,
  proposalSpec,
  proposalStrategy,
  roundCheckpoint,
} from './derive.ts';
import type { RoundPublication } from './publication.ts';
import { VerifyFailure, type VerifyRoundParams } from './types.ts';

/** How far the re-measured held-out loss may be from the committed one: evaluation runs the same examples on the same
 * kernels, so it repeats to the last bits on one backend; the margin covers another machine's wasm SIMD or a GPU. */
export const EVAL_TOLERANCE = 1e-4;

export async function checkAggregate(
  params: VerifyRoundParams,
  p: RoundProposal,
  f: FinalizedRound,
  pub: RoundPublication,
  payloads: Map<string, Uint8Array>,
  base: Base,
  ctx: RoundContext,
): Promise<{ value: void; detail: string }> {
  const { strategy, maxValues } = proposalStrategy(proposalSpec(p), base.model, {
    noiseSeed: noiseSeed(params.network, params.proposal, p.openedAt ?? 0),
    backend: params.backend,
  });
  try {
    if (base.state) strategy.restoreState(base.state);
    const stateBefore = sha256Hex(strategy.exportState());
    if (pub.stateBefore !== null && pub.stateBefore !== stateBefore)
      throw new VerifyFailure(
        'E_AGGREGATE_MISMATCH',
        `the round claims to start from strategy state ${pub.stateBefore}; the base gives ${stateBefore}`,
        f.coordinator,
      );
    const derived = deriveAggregate({
      strategy,
      round: params.round,
      fit: proposalFit(p),
      codec: ctx.encoding.codec,
      maxValues,
      // A cohort update counts as its dense aggregate (verify/cohort.ts).
      updates: pub.updates.map((u) => {
        const payload = payloads.get(u.account)!;
        if (!isCohortPayload(payload)) return { account: u.account, samples: u.samples, payload };
        const { aggregate } = decodeCohortPayload(payload);
        return { account: u.account, samples: u.samples, payload: aggregate, codec: 'dense' };
      }),
    });
    const checkpoint = roundCheckpoint({
      model: base.model,
      weights: derived.result.weights,
      config: ctx.config,
      base: pub.base,
      proposal: params.proposal,
      round: params.round,
      stateHash: derived.stateHash,
    });
    if (checkpoint.id !== f.checkpoint.id)
      throw new VerifyFailure(
        'E_AGGREGATE_MISMATCH',
        `the published updates aggregate to checkpoint ${checkpoint.id}; the coordinator committed ${f.checkpoint.id}`,
        f.coordinator,
      );
    // A cohort's members are credited, not the cohort.
    const included = new Set(
      derived.result.included.flatMap((a) => {
        const payload = payloads.get(a)!;
        if (!isCohortPayload(payload)) return [a];
        return decodeCohortPayload(payload).header.members.map((m) => m.account);
      }),
    );
    const credited = new Set(f.contributors.map((c) => c.account));
    const differs = included.size !== credited.size || [...included].some((a) => !credited.has(a));
    if (differs)
      throw new VerifyFailure(
        'E_REWARD_MISMATCH',
        `the aggregate includes [${[...included].join(', ')}]; the chain credits [${[...credited].join(', ')}]`,
        f.coordinator,
      );
    return {
      value: undefined,
      detail: `${pub.updates.length} update(s) in leaf order → ${checkpoint.id} (${strategy.backend} kernels, ${derived.ms.toFixed(0)} ms)`,
    };
  } finally {
    strategy.dispose();
  }
}

export async function checkEval(
  f: FinalizedRound,
  model: Model,
  ctx: RoundContext,
): Promise<{ value: { committed: number; measured: number; tolerance: number }; detail: string }> {
  const examples = f.metrics.extra.find((m) => m.name === 'evalExamples')?.value;
  const { loss } = await evaluateHeldOut(model, ctx.dataset, ctx.manifest, {
    ...(examples !== undefined ? { maxExamples: examples } : {}),
  });
  const committed = f.metrics.evalLoss;
  const value = { committed, measured: loss, tolerance: EVAL_TOLERANCE };
  if (!(Math.abs(loss - committed) <= EVAL_TOLERANCE))
    throw new VerifyFailure(
      'E_EVAL_MISMATCH',
      `the checkpoint's held-out loss is ${loss.toFixed(6)}; the coordinator committed ${committed.toFixed(6)} (tolerance ${EVAL_TOLERANCE})`,
      f.coordinator,
    );
  return {
    value,
    detail: `held-out loss ${loss.toFixed(6)} on ${examples ?? 'the default'} example(s), committed ${committed.toFixed(6)}`,
  };
}
