// Closing a round: aggregate the accepted updates in leaf order from the strategy's state before the round (as any
// verifier repeats it), publish the updates and states, evaluate the new weights on the held-out split, store the
// checkpoint, and build the exact finalizeRound call (contributors, updatesRoot, shards root, metrics) with its rewards.
import type { Logger } from 'pino';
import type { CheckpointStore } from '../checkpoints/index.ts';
import { fromHex, merkleRoot, toHex, updatesTree, type Hex32 } from '../pallet-bindings/index.ts';
import {
  COHORTS_METRIC,
  deriveAggregate,
  isCohortPayload,
  evaluateHeldOut,
  proposalFit,
  proposalStrategy,
  roundCheckpoint,
} from '../verify/index.ts';
import { CoordinatorError } from './errors.ts';
import type { ProposalContext } from './prepare.ts';
import { expandCohorts } from './parent.ts';
import { publishRound } from './publish.ts';
import type { ClosedRecord, UpdateRecord } from './records.ts';
import { splitRewards, type Reward, type RewardRules } from './rewards.ts';

export { evaluateHeldOut };

export interface CloseResult {
  record: ClosedRecord;
  aggregationMs: number;
}

export async function closeRound(params: {
  ctx: ProposalContext;
  round: number;
  base: string;
  /** The accepted updates, payloads included. */
  accepted: readonly UpdateRecord[];
  /** The strategy's state when the round began (exportState): what the aggregate is derived from. */
  stateBefore: Uint8Array;
  network: string;
  coordinator: string;
  store: CheckpointStore;
  /** The URL workers and consumers fetch the checkpoint from. */
  publicUrl: string;
  evalExamples?: number;
  rewards: Omit<RewardRules, 'total'>;
  /** Drops transfers the chain would refuse (an empty account paid less than the existential deposit). */
  payable(transfers: Reward[]): Promise<Reward[]>;
  logger: Logger;
}): Promise<CloseResult> {
  const { ctx } = params;
  const model = ctx.current!.model;
  // The live strategy checked each update as it arrived; the aggregate is derived afresh in leaf order, so that it is
  // the same bytes whatever order the updates came in, and the same as a verifier's.
  const { strategy } = proposalStrategy(ctx.spec, model, { noiseSeed: ctx.noiseSeed });
  // A sub-coordinator's update counts as its dense aggregate, and its members as contributors (parent.ts).
  const cohorts = expandCohorts(params.accepted, ctx.updateEncoding.codec);
  let derived;
  try {
    strategy.restoreState(params.stateBefore);
    derived = deriveAggregate({
      strategy,
      round: params.round,
      fit: proposalFit(ctx.proposal),
      codec: ctx.updateEncoding.codec,
      maxValues: ctx.maxValues!,
      updates: cohorts.derive,
    });
  } catch (error) {
    strategy.dispose();
    throw error;
  }
  for (const r of derived.refused)
    params.logger.error(
      { account: r.account, code: r.code },
      `an accepted update does not fold in when repeated in leaf order: ${r.message}`,
    );
  ctx.strategy?.dispose();
  ctx.strategy = strategy;
  const agg = derived.result;
  const aggregationMs = derived.ms;
  await publishRound(params.store, {
    network: params.network,
    coordinator: params.coordinator,
    proposal: ctx.id,
    round: params.round,
    base: params.base,
    codec: ctx.updateEncoding.codec,
    stateBefore: params.stateBefore,
    stateAfter: derived.state,
    updates: params.accepted,
  });
  const checkpoint = roundCheckpoint({
    model,
    weights: agg.weights,
    config: ctx.config,
    base: params.base,
    proposal: ctx.id,
    round: params.round,
    stateHash: derived.stateHash,
  });
  const evaluation = await evaluateHeldOut(model, ctx.dataset, ctx.manifest, {
    maxExamples: params.evalExamples,
  });
  const bytes = checkpoint.bytes;
  const { id } = await params.store.put(bytes, checkpoint.fields);
  if (id !== checkpoint.id)
    throw new CoordinatorError(
      'E_CHECKPOINT_MISMATCH',
      `stored round checkpoint as ${id}, derived ${checkpoint.id}`,
    );
  ctx.current = { id, model, round: params.round + 1 };
  const cohortCount = params.accepted.filter((u) => isCohortPayload(u.payload)).length;
  const included = new Set(agg.included);
  const contributors = params.accepted
    .filter((u) => included.has(u.account))
    .flatMap((u) => expandCohorts([u], ctx.updateEncoding.codec).contributors)
    .sort((a, b) => (a.account < b.account ? -1 : 1));
  const leaves = params.accepted.map((u) => ({ account: u.account, updateHash: u.updateHash }));
  const shardLeaves = [...new Set(contributors.flatMap((c) => c.shards))]
    .sort((a, b) => a - b)
    .map((s) => fromHex(ctx.manifest.shards[s]!.leaf));
  const totalSamples = contributors.reduce((n, c) => n + c.samples, 0);
  const trainLoss = contributors.reduce((s, c) => s + c.trainLoss * c.samples, 0) / Math.max(1, totalSamples);
  const extra = [
    { name: 'updates', value: params.accepted.length },
    // A hierarchical round says so on chain: a verifier checks its cohorts (verify/cohort.ts).
    ...(cohortCount > 0 ? [{ name: COHORTS_METRIC, value: cohortCount }] : []),
    // The held-out examples scored: a verifier scores the same ones to repeat evalLoss.
    { name: 'evalExamples', value: evaluation.examples },
    { name: 'aggregationMs', value: Math.round(aggregationMs * 1000) / 1000 },
    ...(evaluation.bitsPerByte !== undefined ? [{ name: 'bitsPerByte', value: evaluation.bitsPerByte }] : []),
    ...(evaluation.accuracy !== undefined ? [{ name: 'accuracy', value: evaluation.accuracy }] : []),
    ...(params.round === 0 && ctx.baseEvalLoss !== null
      ? [{ name: 'baseEvalLoss', value: ctx.baseEvalLoss }]
      : []),
  ];
  const transfers = await params.payable(
    splitRewards(
      { ...params.rewards, total: BigInt(ctx.proposal.round.rewardPerRound || '0') },
      contributors,
    ),
  );
  const record: ClosedRecord = {
    t: 'closed',
    proposal: ctx.id,
    round: params.round,
    call: {
      checkpoint: { id: id as Hex32, bytes: bytes.length, uri: params.publicUrl },
      updatesRoot: updatesTree(leaves).root,
      contributors: contributors.map((c) => ({ account: c.account, samples: c.samples, shards: c.shards })),
      datasetShardsRoot:
        shardLeaves.length > 0 ? toHex(merkleRoot(shardLeaves)) : (`0x${'0'.repeat(64)}` as Hex32),
      metrics: { trainLoss, evalLoss: evaluation.loss, extra },
    },
    transfers,
    leaves,
  };
  params.logger.info(
    { proposal: ctx.id, round: params.round, checkpoint: id, evalLoss: evaluation.loss },
    'round aggregated',
  );
  return { record, aggregationMs };
}
