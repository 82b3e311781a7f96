// Update acceptance: an upload that passed the server's checks (signature, round, base, codec, sizes, hash) is checked
// against its task, bounded, decoded against the model and checked by the strategy (the aggregate is derived at close,
// from the journal, in leaf order). Pure over the round's state.
import {
  decodeClientUpdate,
  SPARSE_CODECS,
  type AnyClientUpdate,
  type CodecName,
  type Strategy,
} from '../aggregation/index.ts';
import { updateLeafHash } from '../pallet-bindings/index.ts';
import type { Assignment } from './assign.ts';
import type { TaskRecord, UpdateRecord } from './records.ts';
import type { UploadedUpdate, Verdict } from './server.ts';

/** A reported training loss above this (nats per token) is not a loss any model of ours reaches: refused. */
export const MAX_TRAIN_LOSS = 100;

export type Rejection = { ok: false; code: string; message: string };

/**
 * One decode buffer per strategy, reused by every dense update: each is checked before checkUpdate returns, so a fresh
 * params-sized array per update would only feed the garbage collector.
 */
const scratch = new WeakMap<Strategy, Float32Array>();

function scratchFor(strategy: Strategy, size: number): Float32Array {
  let buffer = scratch.get(strategy);
  if (buffer === undefined || buffer.length !== size) {
    buffer = new Float32Array(size);
    scratch.set(strategy, buffer);
  }
  return buffer;
}

/** Decodes an update and has the strategy check it (without folding it in); the reason when it does not fit. */
export function checkUpdate(
  strategy: Strategy,
  params: { account: string; samples: number; payload: Uint8Array; codec: string; maxValues: number },
): Verdict {
  let update: AnyClientUpdate;
  try {
    const codec = params.codec as CodecName;
    update = decodeClientUpdate(params.payload, {
      worker: params.account,
      samples: params.samples,
      codec,
      maxValues: params.maxValues,
      // A top-k payload is checked from its k values; a dense one is decoded into the strategy's scratch buffer.
      ...(SPARSE_CODECS.includes(codec) ? {} : { out: scratchFor(strategy, params.maxValues) }),
    });
  } catch (error) {
    const e = error as { code?: string; message: string };
    return { ok: false, code: e.code ?? 'E_UPDATE_MALFORMED', message: e.message };
  }
  const verdict = strategy.check(update);
  return verdict.ok ? { ok: true } : { ok: false, code: verdict.code, message: verdict.reason };
}

/**
 * What every upload meets first, a worker's or a sub-coordinator's: the round is taking updates, the uploader holds
 * this task, has no accepted update yet, the round has room, and the shards are the task's.
 */
export function checkTask<U extends UploadedUpdate>(params: {
  assignment: Assignment | null;
  closing: boolean;
  accepted: ReadonlyMap<string, unknown>;
  maxWorkers: number;
  update: U;
}): { ok: true; assignment: Assignment; task: TaskRecord; update: U } | Rejection {
  const { assignment: a, update } = params;
  const { begin, account } = update;
  const reject = (code: string, message: string): Rejection => ({ ok: false, code, message });
  if (!a || params.closing || begin.proposal !== a.proposal || begin.round !== a.round)
    return reject(
      'E_ROUND_CLOSED',
      `round ${begin.round} of proposal ${begin.proposal} is not taking updates`,
    );
  const task = a.tasks.get(account);
  if (!task || task.taskId !== begin.taskId)
    return reject('E_UNKNOWN_TASK', `no task ${begin.taskId} for ${account}`);
  if (params.accepted.has(account))
    return reject('E_DUPLICATE_UPDATE', `${account} already has an accepted update in this round`);
  if (params.accepted.size >= params.maxWorkers)
    return reject('E_ROUND_FULL', `round already holds maxWorkers = ${params.maxWorkers} updates`);
  const sameShards =
    begin.shards.length === task.shards.length && begin.shards.every((s, i) => s === task.shards[i]);
  if (!sameShards)
    return reject(
      'E_WRONG_SHARDS',
      `update claims shards [${begin.shards}]; the task assigned [${task.shards}]`,
    );
  return { ok: true, assignment: a, task, update };
}

/**
 * Checks an upload against the round: its task, the shards that task named, the bounds on what the worker reports,
 * then decodes and checks it. Returns the journal record (samples derived from the task), or why it was refused.
 */
export function acceptUpdate(params: {
  assignment: Assignment | null;
  closing: boolean;
  accepted: ReadonlyMap<string, unknown>;
  maxWorkers: number;
  /** The samples every task of this round stands for (local steps × batch size). */
  samples: number;
  strategy: Strategy;
  codec: string;
  maxValues: number;
  update: UploadedUpdate;
}): { ok: true; record: UpdateRecord } | Rejection {
  const taken = checkTask(params);
  if (!taken.ok) return taken;
  const { assignment: a, update } = taken;
  const { begin, account } = update;
  const reject = (code: string, message: string): Rejection => ({ ok: false, code, message });
  if (begin.samples !== params.samples)
    return reject(
      'E_SAMPLES_MISMATCH',
      `update claims ${begin.samples} samples; its task is ${params.samples} (local steps × batch size)`,
    );
  if (!(Number.isFinite(begin.trainLoss) && begin.trainLoss >= 0 && begin.trainLoss <= MAX_TRAIN_LOSS))
    return reject(
      'E_UPDATE_BOUNDS',
      `trainLoss must be a number in [0, ${MAX_TRAIN_LOSS}], got ${begin.trainLoss}`,
    );
  const folded = checkUpdate(params.strategy, {
    account,
    samples: params.samples,
    payload: update.payload,
    codec: params.codec,
    maxValues: params.maxValues,
  });
  if (!folded.ok) return folded;
  return {
    ok: true,
    record: {
      t: 'update',
      proposal: a.proposal,
      round: a.round,
      account,
      taskId: begin.taskId,
      samples: params.samples,
      shards: begin.shards,
      trainLoss: begin.trainLoss,
      payloadSha256: begin.payloadSha256,
      updateHash: updateLeafHash({
        proposal: a.proposal,
        round: a.round,
        account,
        samples: params.samples,
        payloadSha256: begin.payloadSha256,
      }),
      signature: begin.signature,
      payload: update.payload,
    },
  };
}
