// Re-executing a sample of the round's contributions: which ones (from a block made after every upload), what each
// needs (for top-k codecs, the worker's earlier contributions too), and the distance to what the worker published.
import { createHash } from 'node:crypto';
import { disposeModel } from '../model/index.ts';
import type { FinalizedRound, RoundProposal } from '../pallet-bindings/index.ts';
import { loadBase, type Base } from './base.ts';
import type { RoundContext } from './context.ts';
import type { RoundPublication } from './publication.ts';
import {
  VerifyError,
  VerifyFailure,
  type ReexecuteInput,
  type VerifyRoundParams,
  type WorkCheck,
} from './types.ts';
import { fetchPublication } from './updates.ts';

/**
 * The contributions to re-execute: ordered by SHA-256 of the finalizeRound block's hash and the account. The block was
 * made after every upload, so no worker could know whether its update would be re-run.
 */
export function pickForRecompute(blockHash: string, accounts: readonly string[], k: number): string[] {
  return accounts
    .map((a) => ({ a, h: createHash('sha256').update(`fedtune-recompute:${blockHash}:${a}`).digest('hex') }))
    .sort((x, y) => (x.h < y.h ? -1 : x.h > y.h ? 1 : 0))
    .slice(0, k)
    .map((x) => x.a);
}

/**
 * Top-k codecs: the worker's contributions to the consecutive rounds just before this one, oldest first, with what
 * re-executing each needs (its published record, its round's base, its seed). Under the residual rule (docs/model.md,
 * "Reproducible training") they rebuild the error-feedback residual the worker carried into this round. Else none.
 */
async function earlierContributions(
  params: VerifyRoundParams,
  p: RoundProposal,
  ctx: RoundContext,
  account: string,
): Promise<ReexecuteInput['earlier']> {
  if (ctx.encoding.codec !== 'topk' && ctx.encoding.codec !== 'topk-int8') return [];
  const rounds: number[] = [];
  for (let q = params.round - 1; q >= 0; q--) {
    if (!p.finalized[q]?.contributors.some((c) => c.account === account)) break;
    rounds.unshift(q);
  }
  const out: ReexecuteInput['earlier'] = [];
  for (const q of rounds) {
    const at = { ...params, round: q };
    const { value: pub } = await fetchPublication(at, p.finalized[q]!, ctx);
    const update = pub.updates.find((u) => u.account === account);
    if (!update)
      throw new VerifyFailure(
        'E_UPDATE_UNAVAILABLE',
        `round ${q}'s published updates lack ${account}, a contributor on chain`,
        p.finalized[q]!.coordinator,
      );
    const { value: base } = await loadBase(at, p, pub, ctx);
    disposeModel(base.model);
    out.push({ round: q, update, baseBytes: base.bytes });
  }
  return out;
}

export async function recompute(
  params: VerifyRoundParams,
  p: RoundProposal,
  f: FinalizedRound,
  pub: RoundPublication,
  payloads: Map<string, Uint8Array>,
  base: Base,
  ctx: RoundContext,
  out: WorkCheck[],
): Promise<{ value: void; detail: string }> {
  if (!params.reexecute) throw new VerifyError('E_NO_REEXECUTE', 'this verifier cannot re-execute tasks');
  const chosen = pickForRecompute(
    await params.blockHash(f.block),
    f.contributors.map((c) => c.account),
    params.recompute ?? 0,
  );
  for (const account of chosen) {
    const update = pub.updates.find((u) => u.account === account)!;
    const s0 = performance.now();
    const result = await params.reexecute({
      proposal: params.proposal,
      round: params.round,
      update,
      payload: payloads.get(account)!,
      baseBytes: base.bytes,
      config: ctx.config,
      fit: ctx.fit,
      encoding: ctx.encoding,
      dataset: ctx.dataset,
      manifest: ctx.manifest,
      datasetRoot: p.round.dataset,
      earlier: await earlierContributions(params, p, ctx, account),
    });
    out.push({
      account,
      ok: result.ok,
      distance: result.distance,
      threshold: result.threshold,
      ms: performance.now() - s0,
    });
    if (!result.ok)
      throw new VerifyFailure(
        'E_WORK_MISMATCH',
        `re-executing ${account}'s task gives an update at relative distance ${result.distance.toPrecision(3)} from the one it published (threshold ${result.threshold})${result.detail ? `: ${result.detail}` : ''}`,
        account,
      );
  }
  return {
    value: undefined,
    detail: `${chosen.length} of ${f.contributors.length} contribution(s) re-executed: ${out.map((w) => `${w.account.slice(0, 8)}… ${w.distance.toPrecision(2)}`).join(', ')}`,
  };
}
