// Re-execution of a worker's task for `round verify --recompute`: the same base bytes, records, hyper-parameters, seed
// and codec through the same trainTask and updatePayload the trainer runs, and the comparison of the result with the
// payload the worker published. What is reproducible on which backend, and why the tolerance is what it is:
// docs/model.md, "Reproducible training".
import * as tf from '@tensorflow/tfjs';
import { pino, type Logger } from 'pino';
import { decodeUpdate, type CodecName, type NamedTensor, type TopKState } from '../aggregation/index.ts';
import type { DatasetRecord } from '../datasets/index.ts';
import { backendFlavour, initBackend, type BackendChoice, type NamedTensors } from '../model/index.ts';
import type { Task } from '../proto/index.ts';
import { WorkerError } from './connection.ts';
import { updatePayload } from './payload.ts';
import { parseTask, trainTask, type ParsedTask } from './task.ts';

/**
 * Relative L2 distance ‖published − recomputed‖ / ‖recomputed‖ (decoded updates) below which a payload that is not
 * bit-identical, re-executed on another backend flavour, still counts as the task's work. Measured (docs/model.md,
 * bench/reexecute.ts, tiny LM, batch 16, AdamW lr 0.01): an honest wasm-simd vs cpu re-run is 3e-6 apart after 5 steps,
 * 5e-6 after 20, 3e-4 after 100, but 0.30 after 200 (the trajectories diverge; wasm-simd vs wasm without SIMD: 0.049
 * after 50 steps, 0.44 after 200); a cheat is 0.1 (scaled x1.1) and more:
 * 0.25 (x1.25), 0.5 (x0.5, and another shard), 1.41 (a random vector of the same norm). So this tolerance decides only
 * short tasks; a long one must be re-executed on the worker's own flavour, where only identical bytes pass.
 */
export const WORK_TOLERANCE = 0.01;

/** Flavours (model/ backendFlavour) whose runs are bit-identical on every machine, measured: see docs/model.md. */
export const REPRODUCIBLE_FLAVOURS: readonly string[] = [
  'wasm-simd-k1',
  'wasm-k1',
  'wasm-simd',
  'wasm',
  'cpu',
];

export interface ReexecuteParameters {
  /** The task frame as the worker got it, or its parsed settings. */
  task: Task | ParsedTask;
  /** The base checkpoint's bytes (verified against the task's base id by the caller). */
  baseCheckpoint: Uint8Array;
  /** The records of the task's shards (verified against the dataset root by the caller), in shard order. */
  records: DatasetRecord[];
  labels?: string[];
  /** tfjs backend to train on (default wasm, the trainer's default). The previous backend is restored afterwards. */
  backend?: BackendChoice;
  /** Top-k codecs: the residual the worker carried into this round (see reexecuteChain). */
  priorState?: TopKState;
  logger?: Logger;
}

export interface Reexecution {
  /** The dense update (float32 deltas from the base), before encoding. */
  update: NamedTensors;
  /** The payload encoded with the task's codec: what an honest worker uploaded. */
  payload: Uint8Array;
  codec: string;
  /** Top-k codecs: the residual after this round, the next round's priorState. */
  state?: TopKState;
  samples: number;
  trainLoss: number;
  /** The tfjs backend it ran on. */
  backend: string;
  /** backendFlavour(): 'wasm-simd-k1', 'wasm-simd', 'wasm' (no SIMD), 'cpu', 'tensorflow'. Bit-identical results need the same one. */
  flavour: string;
}

const silent = pino({ level: 'silent' });

function isParsed(task: Task | ParsedTask): task is ParsedTask {
  return (task as ParsedTask).hyper !== undefined && (task as ParsedTask).task !== undefined;
}

/** Re-runs a worker's task and encodes its update exactly as the trainer does. */
export async function reexecuteTask(p: ReexecuteParameters): Promise<Reexecution> {
  const parsed = isParsed(p.task) ? p.task : parseTask(p.task);
  const logger = p.logger ?? silent;
  const wanted = p.backend ?? 'wasm';
  const before = tf.getBackend();
  let switched = false;
  if (wanted === 'auto' || before !== wanted) {
    const { name } = await initBackend({ backend: wanted, logger });
    switched = name !== before;
  }
  try {
    const result = await trainTask({
      parsed,
      baseCheckpoint: p.baseCheckpoint,
      records: p.records,
      labels: p.labels,
      logger,
    });
    const encoded = updatePayload({
      parsed,
      update: result.update,
      updateKind: result.updateKind,
      baseCheckpoint: p.baseCheckpoint,
      priorState: p.priorState,
    });
    return {
      update: encoded.delta,
      payload: encoded.payload,
      codec: parsed.codec.codec,
      state: encoded.state,
      samples: result.samples,
      trainLoss: result.trainLoss,
      backend: tf.getBackend(),
      flavour: await backendFlavour(),
    };
  } finally {
    if (switched && before) await tf.setBackend(before);
  }
}

/**
 * Re-executes a worker's contributions to consecutive rounds of one proposal, oldest first, each starting from the
 * residual the previous left (the first from zero). Under the residual rule this rebuilds a top-k worker's round r:
 * pass its contributions from the first round of its current run of consecutive rounds up to r. For other codecs
 * only the last matters, and only it need be passed.
 */
export async function reexecuteChain(
  steps: readonly Omit<ReexecuteParameters, 'priorState' | 'backend' | 'logger'>[],
  options: { backend?: BackendChoice; logger?: Logger } = {},
): Promise<Reexecution[]> {
  if (steps.length === 0) throw new WorkerError('E_TASK_INVALID', 'reexecuteChain needs at least one task');
  const out: Reexecution[] = [];
  let state: TopKState | undefined;
  let last: { proposal: number; round: number } | undefined;
  for (const step of steps) {
    const parsed = isParsed(step.task) ? step.task : parseTask(step.task);
    const { proposal, round } = parsed.task;
    if (last && (proposal !== last.proposal || round !== last.round + 1))
      throw new WorkerError(
        'E_TASK_INVALID',
        `the chain must be consecutive rounds of one proposal: ${last.proposal}/${last.round} is followed by ${proposal}/${round}`,
      );
    const r = await reexecuteTask({ ...step, task: parsed, priorState: state, ...options });
    out.push(r);
    state = r.state;
    last = { proposal, round };
  }
  return out;
}

/**
 * Which of a worker's contributions (round numbers of one proposal) must be re-executed, in order, to rebuild its
 * top-k payload for `round`: the run of consecutive rounds ending at it. Throws when it did not contribute to `round`.
 */
export function chainRounds(contributed: readonly number[], round: number): number[] {
  const set = new Set(contributed);
  if (!set.has(round))
    throw new WorkerError('E_TASK_INVALID', `the worker has no contribution to round ${round}`);
  let first = round;
  while (set.has(first - 1)) first -= 1;
  return Array.from({ length: round - first + 1 }, (_, i) => first + i);
}

export interface WorkComparison {
  /** The published payload stands for the task's work: bit-identical, or (another flavour) within the threshold. */
  ok: boolean;
  /** The payload bytes are identical. */
  exact: boolean;
  /**
   * The verdict can be relied on: identical bytes, a payload that is not an update of the task's tensors, a difference
   * on the worker's own reproducible flavour, or a distance within tolerance. A distance beyond it across flavours is not
   * conclusive (an honest long task diverges across backends): re-execute on the worker's flavour to decide.
   */
  conclusive: boolean;
  /** ‖published − recomputed‖ / ‖recomputed‖ over all tensors, decoded; 0 when exact, Infinity when incomparable. */
  distance: number;
  threshold: number;
  /** What was found, for a report or an E_WORK_MISMATCH message. */
  detail: string;
}

function l2(tensors: readonly NamedTensor[]): number {
  let s = 0;
  for (const t of tensors) for (let i = 0; i < t.data.length; i++) s += t.data[i]! * t.data[i]!;
  return Math.sqrt(s);
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Compares a published update with a re-execution of its task. Identical bytes are the work. A payload that does not
 * decode as the task's tensors, or the task's codec, is not. Otherwise both are decoded and their relative L2 distance
 * is taken: on the worker's own reproducible flavour (both `flavour`s given, equal, in REPRODUCIBLE_FLAVOURS) any
 * difference is a mismatch; across flavours (or unknown) a distance within `threshold` (default WORK_TOLERANCE) passes,
 * and one beyond it fails without being conclusive.
 */
export function compareWork(
  published: { payload: Uint8Array; codec: string; flavour?: string },
  recomputed: { payload: Uint8Array; codec?: string; flavour?: string },
  options: { threshold?: number } = {},
): WorkComparison {
  const threshold = options.threshold ?? WORK_TOLERANCE;
  const verdict = (v: Omit<WorkComparison, 'threshold'>): WorkComparison => ({ ...v, threshold });
  if (recomputed.codec !== undefined && recomputed.codec !== published.codec) {
    return verdict({
      ok: false,
      exact: false,
      conclusive: true,
      distance: Infinity,
      detail: `published with codec ${published.codec}, the task asks for ${recomputed.codec}`,
    });
  }
  if (equalBytes(published.payload, recomputed.payload))
    return verdict({ ok: true, exact: true, conclusive: true, distance: 0, detail: 'bit-identical payload' });
  const codec = published.codec as CodecName;
  const mine = decodeUpdate(recomputed.payload, { codec });
  let theirs: NamedTensor[];
  try {
    theirs = decodeUpdate(published.payload, {
      codec,
      expect: mine.map((t) => ({ name: t.name, shape: t.shape })),
    });
  } catch (error) {
    const code = (error as { code?: string }).code ?? 'E_CODEC_MALFORMED';
    return verdict({
      ok: false,
      exact: false,
      conclusive: true,
      distance: Infinity,
      detail: `the published payload is not an update of the task's tensors: ${code}: ${(error as Error).message}`,
    });
  }
  let diff = 0;
  let worst = { name: '', d: -1 };
  theirs.forEach((t, i) => {
    const m = mine[i]!.data;
    let s = 0;
    for (let j = 0; j < m.length; j++) s += (t.data[j]! - m[j]!) ** 2;
    diff += s;
    if (s > worst.d) worst = { name: t.name, d: s };
  });
  const norm = l2(mine);
  const distance = norm > 0 ? Math.sqrt(diff) / norm : diff > 0 ? Infinity : 0;
  const rel = `relative L2 distance ${distance.toPrecision(3)}`;
  const where = `the largest difference is in ${worst.name}`;
  const own =
    published.flavour !== undefined &&
    published.flavour === recomputed.flavour &&
    REPRODUCIBLE_FLAVOURS.includes(published.flavour);
  if (own) {
    return verdict({
      ok: false,
      exact: false,
      conclusive: true,
      distance,
      detail: `not bit-identical on the worker's own backend ${published.flavour} (${rel}): not the task's work; ${where}`,
    });
  }
  const ok = distance <= threshold;
  return verdict({
    ok,
    exact: false,
    conclusive: ok,
    distance,
    detail: ok
      ? `${rel} (threshold ${threshold}): not bit-identical, another backend, within tolerance`
      : `${rel} (threshold ${threshold}): not the task's work, or a long task diverging across backends ` +
        `(${published.flavour ?? 'unknown'} vs ${recomputed.flavour ?? 'unknown'}); ${where}`,
  });
}
