// A worker's task as the coordinator sends it, derived from public values only (the proposal, the round, the account,
// the strategy's round config), so a verifier rebuilds the exact task to re-execute it.
import { createHash } from 'node:crypto';
import type { FitConfig } from '../aggregation/index.ts';
import type { Task } from '../proto/index.ts';

/** A seed for a task's local training: derived, so a re-execution of the task uses the same one. */
export function taskSeed(proposal: number, round: number, account: string): number {
  return createHash('sha256').update(`${proposal}:${round}:${account}`).digest().readUInt32LE(0);
}

/** The Task frame for a slot: everything the worker needs, its local training exactly the strategy's RoundConfig.fit. */
export function taskFrame(params: {
  task: { account: string; taskId: string; shards: number[] };
  proposal: number;
  round: number;
  base: { id: string; bytes: number; url: string };
  datasetRoot: string;
  modelJson: string;
  fit: FitConfig;
  updateEncoding: Record<string, unknown>;
  deadlineMs: number;
}): Task {
  const { task } = params;
  return {
    taskId: task.taskId,
    proposal: params.proposal,
    round: params.round,
    base: params.base,
    shards: task.shards,
    datasetRoot: params.datasetRoot,
    modelJson: params.modelJson,
    hyperparamsJson: JSON.stringify({
      ...params.fit,
      seed: taskSeed(params.proposal, params.round, task.account),
    }),
    codecJson: JSON.stringify(params.updateEncoding),
    deadlineMs: params.deadlineMs,
  };
}

/** The samples an update stands for, derived from its task: local steps × batch size, never the worker's claim. */
export const taskSamples = (fit: Pick<FitConfig, 'localSteps' | 'batchSize'>): number =>
  fit.localSteps * fit.batchSize;
