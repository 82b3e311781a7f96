// Closing a round: aggregate the folded updates, evaluate the new weights on the held-out split, store the checkpoint,
// and build the exact finalizeRound call (contributors, updatesRoot, shards root, metrics) with its reward transfers.
import type { Logger } from 'pino';
import type { CheckpointStore } from '../checkpoints/index.ts';
import { heldOutExamples, type Dataset, type DatasetManifest } from '../datasets/index.ts';
import { evaluate, modelToSafetensors, setWeights, type Model } from '../model/index.ts';
import { fromHex, merkleRoot, toHex, updatesTree, type Hex32 } from '../pallet-bindings/index.ts';
import type { ProposalContext } from './prepare.ts';
import type { ClosedRecord, UpdateRecord } from './records.ts';
import { splitRewards, type Reward, type RewardRules } from './rewards.ts';

/** A model's loss on the proposal's held-out examples: the same evenly spaced ones every evaluator scores. */
export async function evaluateHeldOut(
  model: Model,
  dataset: Dataset,
  manifest: DatasetManifest,
  options: { maxExamples?: number } = {},
): Promise<{ loss: number; bitsPerByte?: number; accuracy?: number; examples: number; available: number }> {
  const { examples, available } = heldOutExamples(dataset, manifest, model.config, options);
  const result = await evaluate(model, examples, { batchSize: 32 });
  return {
    loss: result.loss,
    ...(result.bitsPerByte !== undefined ? { bitsPerByte: result.bitsPerByte } : {}),
    ...(result.accuracy !== undefined ? { accuracy: result.accuracy } : {}),
    examples: examples.length,
    available,
  };
}

export interface CloseResult {
  record: ClosedRecord;
  aggregationMs: number;
}

export async function closeRound(params: {
  ctx: ProposalContext;
  round: number;
  base: string;
  accepted: readonly UpdateRecord[];
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
  const t0 = performance.now();
  const agg = ctx.strategy!.aggregate();
  const aggregationMs = performance.now() - t0;
  const model = ctx.current!.model;
  setWeights(model, agg.weights, { partial: true });
  const evaluation = await evaluateHeldOut(model, ctx.dataset, ctx.manifest, {
    maxExamples: params.evalExamples,
  });
  const bytes = modelToSafetensors(model);
  const { id } = await params.store.put(bytes, {
    model: ctx.config as never,
    parent: params.base,
    proposal: ctx.id,
    round: params.round,
  });
  ctx.current = { id, model, round: params.round + 1 };
  const included = new Set(agg.included);
  const contributors = params.accepted
    .filter((u) => included.has(u.account))
    .sort((a, b) => (a.account < b.account ? -1 : 1));
  const leaves = params.accepted.map((u) => ({ account: u.account, updateHash: u.updateHash }));
  const shardLeaves = [...new Set(contributors.flatMap((c) => c.shards))]
    .sort((a, b) => a - b)
    .map((s) => fromHex(ctx.manifest.shards[s]!.leaf));
  const totalSamples = contributors.reduce((n, c) => n + c.samples, 0);
  const trainLoss = contributors.reduce((s, c) => s + c.trainLoss * c.samples, 0) / Math.max(1, totalSamples);
  const extra = [
    { name: 'updates', value: params.accepted.length },
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
