// `fedtune round verify`: repeats a finalized round from what is on chain and what its sources publish, trusting no
// source. Each step is timed; the first failed check ends the run with a code that names the culprit.
import { disposeModel, type Model } from '../model/index.ts';
import type { RoundProposal } from '../pallet-bindings/index.ts';
import { loadBase } from './base.ts';
import { checkAggregate, checkEval } from './checkpoint.ts';
import { isHierarchical } from './cohort.ts';
import { cohortCustody, cohortMeans, reexecuteUnsupported } from './cohort-steps.ts';
import { roundContext } from './context.ts';
import { recompute } from './reexecute.ts';
import { checkRules } from './rules.ts';
import {
  VerifyError,
  VerifyFailure,
  type VerifyReport,
  type VerifyRoundParams,
  type VerifyStep,
  type WorkCheck,
} from './types.ts';
import { checkSignatures, fetchPayloads, fetchPublication } from './updates.ts';

export async function verifyRound(params: VerifyRoundParams): Promise<VerifyReport> {
  const t0 = performance.now();
  const steps: VerifyStep[] = [];
  const recomputed: WorkCheck[] = [];
  const { net } = params;
  const p = net.proposals[params.proposal] as RoundProposal | undefined;
  if (!p || p.type !== 'round')
    throw new VerifyError(
      'E_UNKNOWN_PROPOSAL',
      `proposal ${params.proposal} is not a round proposal of this network`,
    );
  const f = p.finalized[params.round];
  if (!f)
    throw new VerifyError(
      'E_NOT_FINALIZED',
      `round ${params.round} of proposal ${params.proposal} is not finalized (${p.finalized.length} round(s) are)`,
    );
  const report: VerifyReport = {
    ok: false,
    proposal: params.proposal,
    round: params.round,
    checkpoint: f.checkpoint.id,
    updates: 0,
    recomputed,
    steps,
    seconds: 0,
  };
  const step = async <T>(name: string, run: () => Promise<{ value: T; detail: string }>): Promise<T> => {
    const s0 = performance.now();
    try {
      const { value, detail } = await run();
      const done = { step: name, ok: true, ms: performance.now() - s0, detail };
      steps.push(done);
      params.onStep?.(done);
      return value;
    } catch (error) {
      const failed = { step: name, ok: false, ms: performance.now() - s0, detail: (error as Error).message };
      steps.push(failed);
      params.onStep?.(failed);
      throw error;
    }
  };
  const models: Model[] = [];
  try {
    const ctx = await step('context', () => roundContext(params, p, f));
    // A hierarchical round (verify/cohort.ts): custody through the cohorts, then each cohort's aggregate repeated.
    const hierarchical = isHierarchical(f);
    const publication = hierarchical
      ? await step('cohorts', () => cohortCustody(params, p, f, ctx))
      : await step('publication', () => fetchPublication(params, f, ctx));
    report.updates = publication.updates.length;
    if (!hierarchical) {
      await step('signatures', () => checkSignatures(params, f, publication));
      await step('rules', () => checkRules(p, f, publication, ctx));
    }
    const payloads = await step('updates', () => fetchPayloads(ctx.sources, publication, f));
    const base = await step('base', () => loadBase(params, p, publication, ctx));
    models.push(base.model);
    if (hierarchical) await step('cohort aggregates', () => cohortMeans(params, p, payloads, base, ctx));
    await step('aggregate', () => checkAggregate(params, p, f, publication, payloads, base, ctx));
    report.evalLoss = await step('evaluate', () => checkEval(f, base.model, ctx));
    if ((params.recompute ?? 0) > 0 && hierarchical) reexecuteUnsupported();
    if ((params.recompute ?? 0) > 0)
      await step('re-execute', () => recompute(params, p, f, publication, payloads, base, ctx, recomputed));
    report.ok = true;
  } catch (error) {
    if (!(error instanceof VerifyFailure)) throw error;
    report.code = error.code;
    report.culprit = error.culprit;
    report.message = error.message;
  } finally {
    for (const m of models) disposeModel(m);
    report.seconds = (performance.now() - t0) / 1000;
  }
  return report;
}
