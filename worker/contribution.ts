// Re-executing a published contribution for `fedtune round verify`: the worker's task rebuilt from public values, its
// shards checked against the dataset root, and run through reexecute.ts (the trainer's own trainTask and
// updatePayload), with top-k's residual rebuilt from the worker's earlier contributions under the residual rule; the
// result compared with the published update by compareWork (docs/model.md, "Reproducible training").
import type { DatasetRecord } from '../datasets/index.ts';
import type { Task } from '../proto/index.ts';
import { taskFrame, type ReexecuteInput } from '../verify/index.ts';
import { WorkerError } from './connection.ts';
import { isTopK } from './payload.ts';
import { compareWork, reexecuteChain } from './reexecute.ts';
import { verifiedShardRecords } from './task.ts';

/**
 * Re-executes one published contribution and compares it with its payload. For top-k codecs `input.earlier` must hold
 * the worker's contributions to the consecutive rounds just before this one (chainRounds), oldest first: each is
 * re-executed to rebuild the residual the worker carried. Runs on wasm, the trainers' default backend.
 */
export async function reexecuteContribution(
  input: ReexecuteInput,
): Promise<{ ok: boolean; distance: number; threshold: number; detail?: string }> {
  const earlier = isTopK(String(input.encoding.codec)) ? input.earlier : [];
  earlier.forEach((e, i) => {
    if (i > 0 && e.round !== earlier[i - 1]!.round + 1)
      throw new WorkerError(
        'E_TASK_INVALID',
        `earlier contributions must be consecutive rounds: ${earlier[i - 1]!.round} is followed by ${e.round}`,
      );
  });
  // Each task exactly as the coordinator sent it (taskFrame), its seed derived from proposal, round and account.
  const frame = (round: number, update: ReexecuteInput['update'], baseBytes: Uint8Array): Task =>
    taskFrame({
      task: { account: update.account, taskId: update.taskId, shards: update.shards },
      proposal: input.proposal,
      round,
      base: { id: '0x', bytes: baseBytes.length, url: '' },
      datasetRoot: input.datasetRoot,
      modelJson: JSON.stringify(input.config),
      fit: input.fit,
      updateEncoding: input.encoding,
      deadlineMs: 0,
    });
  const records = (shards: number[]): DatasetRecord[] =>
    verifiedShardRecords(input.dataset, input.manifest, input.datasetRoot, shards);
  const steps = [
    ...earlier.map((e) => ({
      task: frame(e.round, e.update, e.baseBytes),
      baseCheckpoint: e.baseBytes,
      records: records(e.update.shards),
      labels: input.manifest.labels,
    })),
    {
      task: frame(input.round, input.update, input.baseBytes),
      baseCheckpoint: input.baseBytes,
      records: records(input.update.shards),
      labels: input.manifest.labels,
    },
  ];
  const runs = await reexecuteChain(steps, { backend: 'wasm' });
  const verdict = compareWork({ payload: input.payload, codec: String(input.encoding.codec) }, runs.at(-1)!);
  const detail = verdict.ok || verdict.conclusive ? verdict.detail : `${verdict.detail} (not conclusive)`;
  return { ok: verdict.ok, distance: verdict.distance, threshold: verdict.threshold, detail };
}
