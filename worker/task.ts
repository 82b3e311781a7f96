// One task's local work: check the assigned shards against the on-chain dataset root, fetch and verify the base
// checkpoint, and train it on those shards with TensorFlow.js, returning the update as named tensors.
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import {
  examplesFor,
  shardProof,
  shardRecords,
  verifyManifest,
  verifyShard,
  type Dataset,
  type DatasetManifest,
  type DatasetRecord,
} from '../datasets/index.ts';
import {
  disposeModel,
  modelFromSafetensors,
  trainLocal,
  validateConfig,
  type Model,
  type ModelConfig,
  type NamedTensors,
  type StepInfo,
} from '../model/index.ts';
import {
  CHECKPOINT_FILE,
  downloadCheckpoint,
  httpSource,
  verifyCheckpointDir,
  type DownloadProgress,
} from '../checkpoints/index.ts';
import { DEFAULT_FIT, type FitConfig } from '../aggregation/index.ts';
import type { Task } from '../proto/index.ts';
import { WorkerError } from './connection.ts';

/** The local-training part of a round's hyper-parameters, as the task carries them (the strategy's RoundConfig.fit). */
export type LocalHyperparams = FitConfig & { seed: number };

export interface ParsedTask {
  task: Task;
  model: ModelConfig;
  hyper: LocalHyperparams;
  /** The update codec and its options, passed through to the encoder. */
  codec: { codec: string } & Record<string, unknown>;
}

function parseJson(what: string, text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    if (value !== null && typeof value === 'object' && !Array.isArray(value))
      return value as Record<string, unknown>;
  } catch {
    // answered below
  }
  throw new WorkerError('E_TASK_INVALID', `the task's ${what} is not a JSON object`);
}

function positive(o: Record<string, unknown>, key: string, fallback?: number, integer = false): number {
  const value = o[key] ?? fallback;
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    value < 0 ||
    (integer && !Number.isInteger(value))
  ) {
    throw new WorkerError(
      'E_TASK_INVALID',
      `hyper-parameter ${key} must be a ${integer ? 'non-negative integer' : 'non-negative number'}, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** Validates a task's JSON fields into typed settings; a malformed task is refused with E_TASK_INVALID. */
export function parseTask(task: Task): ParsedTask {
  let model: ModelConfig;
  try {
    model = validateConfig(parseJson('model', task.modelJson) as unknown as ModelConfig);
  } catch (error) {
    throw new WorkerError(
      'E_TASK_INVALID',
      `the task's model config is invalid: ${(error as Error).message}`,
    );
  }
  const h = parseJson('hyper-parameters', task.hyperparamsJson);
  const optimiser = h.optimiser ?? DEFAULT_FIT.optimiser;
  if (optimiser !== 'adamw' && optimiser !== 'sgd')
    throw new WorkerError(
      'E_TASK_INVALID',
      `optimiser must be adamw or sgd, got ${JSON.stringify(optimiser)}`,
    );
  const schedule = h.schedule ?? DEFAULT_FIT.schedule;
  if (schedule !== 'cosine' && schedule !== 'constant')
    throw new WorkerError(
      'E_TASK_INVALID',
      `schedule must be cosine or constant, got ${JSON.stringify(schedule)}`,
    );
  const hyper: LocalHyperparams = {
    localSteps: positive(h, 'localSteps', undefined, true),
    batchSize: positive(h, 'batchSize', DEFAULT_FIT.batchSize, true),
    learningRate: positive(h, 'learningRate', DEFAULT_FIT.learningRate),
    optimiser,
    fedProxMu: positive(h, 'fedProxMu', DEFAULT_FIT.fedProxMu),
    gradClipNorm: positive(h, 'gradClipNorm', DEFAULT_FIT.gradClipNorm),
    warmupSteps: positive(h, 'warmupSteps', DEFAULT_FIT.warmupSteps, true),
    schedule,
    minLrRatio: positive(h, 'minLrRatio', DEFAULT_FIT.minLrRatio),
    seed: positive(h, 'seed', 0, true),
  };
  if (hyper.minLrRatio > 1) throw new WorkerError('E_TASK_INVALID', 'minLrRatio must be in [0, 1]');
  if (hyper.localSteps === 0 || hyper.batchSize === 0)
    throw new WorkerError('E_TASK_INVALID', 'localSteps and batchSize must be at least 1');
  const codec = parseJson('codec', task.codecJson);
  if (typeof codec.codec !== 'string')
    throw new WorkerError('E_TASK_INVALID', 'the task names no update codec');
  return { task, model, hyper, codec: codec as ParsedTask['codec'] };
}

/**
 * The records of the task's shards, each shard checked against the dataset's on-chain Merkle root. A worker whose local
 * data differs from what was registered refuses with E_SHARD_MISMATCH (naming the shard and record) rather than train on it.
 */
export function verifiedShardRecords(
  dataset: Dataset,
  manifest: DatasetManifest,
  root: string,
  shards: readonly number[],
): DatasetRecord[] {
  try {
    verifyManifest(manifest, root);
  } catch (error) {
    throw new WorkerError(
      'E_SHARD_MISMATCH',
      `the dataset manifest does not match the on-chain root ${root}: ${(error as Error).message}`,
    );
  }
  const records: DatasetRecord[] = [];
  for (const shard of shards) {
    if (!Number.isInteger(shard) || shard < 0 || shard >= manifest.shards.length) {
      throw new WorkerError(
        'E_TASK_INVALID',
        `shard ${shard} does not exist; the dataset has ${manifest.shards.length}`,
      );
    }
    const shardData = shardRecords(dataset, manifest, shard);
    verifyShard(root, shardProof(manifest, shard), shardData);
    records.push(...shardData);
  }
  return records;
}

/** Fetches the task's base checkpoint into the cache (verified chunk by chunk against its id) unless it is there already. */
export async function fetchBaseCheckpoint(params: {
  task: Task;
  cacheDir: string;
  logger: Logger;
  onProgress?: (p: DownloadProgress) => void;
}): Promise<Uint8Array> {
  const { task, cacheDir, logger } = params;
  const dir = join(cacheDir, 'checkpoints', task.base.id.slice(2));
  await mkdir(dir, { recursive: true });
  try {
    await verifyCheckpointDir(dir, task.base.id);
    logger.debug({ id: task.base.id }, 'base checkpoint already cached');
  } catch {
    await downloadCheckpoint({
      id: task.base.id,
      sources: [httpSource(task.base.url)],
      outDir: dir,
      logger,
      onProgress: params.onProgress,
    });
  }
  return new Uint8Array(await readFile(join(dir, CHECKPOINT_FILE)));
}

export interface TrainTaskResult {
  update: NamedTensors;
  updateKind: 'delta' | 'values';
  samples: number;
  trainLoss: number;
  steps: number;
}

/** Loads the base weights, trains them on the records as the task's hyper-parameters say, and returns the update. */
export async function trainTask(params: {
  parsed: ParsedTask;
  baseCheckpoint: Uint8Array;
  records: DatasetRecord[];
  labels?: string[];
  logger: Logger;
  onStep?: (info: StepInfo) => void;
}): Promise<TrainTaskResult> {
  const { parsed, baseCheckpoint, records, logger } = params;
  let model: Model | null = null;
  try {
    model = modelFromSafetensors(baseCheckpoint, parsed.model);
    const examples = examplesFor(parsed.model, records, params.labels);
    if (examples.length === 0)
      throw new WorkerError('E_TASK_INVALID', 'the assigned shards hold no training examples');
    const { hyper } = parsed;
    const result = await trainLocal({
      model,
      examples,
      steps: hyper.localSteps,
      batchSize: hyper.batchSize,
      optimiser: hyper.optimiser,
      lr: hyper.learningRate,
      schedule: { warmupSteps: hyper.warmupSteps, decay: hyper.schedule, minLrRatio: hyper.minLrRatio },
      clipNorm: hyper.gradClipNorm,
      fedProxMu: hyper.fedProxMu,
      seed: hyper.seed,
      onStep: params.onStep,
      logger,
    });
    return {
      update: result.update,
      updateKind: result.updateKind,
      samples: result.samples,
      trainLoss: result.trainLoss,
      steps: result.steps,
    };
  } finally {
    if (model) disposeModel(model);
  }
}
