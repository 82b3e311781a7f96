// Shared by bench/reexecute.ts and its child process: one real task (tiny LM, Moby Dick shards, a fixed base
// checkpoint), run through reexecuteTask on a given backend.
import {
  buildManifest,
  loadDataset,
  shardDataset,
  shardRecords,
  type DatasetRecord,
} from '../../datasets/index.ts';
import {
  createModel,
  disposeModel,
  initBackend,
  modelConfig,
  modelToSafetensors,
  type BackendChoice,
  type NamedTensors,
} from '../../model/index.ts';
import type { Task } from '../../proto/index.ts';
import { reexecuteTask, updatePayload, type ParsedTask, type Reexecution } from '../../worker/index.ts';

export interface Fixture {
  base: Uint8Array;
  shard(i: number): DatasetRecord[];
  task(o: {
    steps: number;
    codec: Record<string, unknown>;
    shards?: number[];
    round?: number;
    seed?: number;
  }): Task;
}

export async function fixture(): Promise<Fixture> {
  await initBackend({ backend: 'wasm' });
  const model = modelConfig('tiny', { context: 32 });
  const m = createModel(model, { seed: 7 });
  const base = modelToSafetensors(m);
  disposeModel(m);
  const ds = loadDataset({ name: 'moby-dick' });
  const manifest = buildManifest(ds, shardDataset(ds, { scheme: 'iid', shards: 8, seed: 3 }));
  return {
    base,
    shard: (i) => shardRecords(ds, manifest, i),
    task: ({ steps, codec, shards = [1], round = 1, seed = 123456789 }) => ({
      taskId: `t${round}`,
      proposal: 0,
      round,
      base: { id: `0x${'00'.repeat(32)}`, bytes: base.length, url: 'http://127.0.0.1:1' },
      shards,
      datasetRoot: manifest.root,
      modelJson: JSON.stringify(model),
      hyperparamsJson: JSON.stringify({ localSteps: steps, batchSize: 16, learningRate: 0.01, seed }),
      codecJson: JSON.stringify(codec),
      deadlineMs: 0,
    }),
  };
}

export async function runTask(
  f: Fixture,
  backend: BackendChoice,
  o: Parameters<Fixture['task']>[0],
): Promise<Reexecution> {
  const shards = o.shards ?? [1];
  return reexecuteTask({
    task: f.task(o),
    baseCheckpoint: f.base,
    records: shards.flatMap((s) => f.shard(s)),
    backend,
  });
}

/** The codecs measured: each encodes the same trained delta (a fresh top-k residual). */
export const CODEC_CASES: { name: string; codec: Record<string, unknown> }[] = [
  { name: 'dense', codec: { codec: 'dense' } },
  { name: 'int8', codec: { codec: 'int8' } },
  { name: 'topk 1%', codec: { codec: 'topk', fraction: 0.01 } },
];

/** The payload of each codec case for one trained update. */
export function payloadsOf(
  f: Fixture,
  r: { update: NamedTensors },
): { name: string; codec: string; payload: Uint8Array }[] {
  return CODEC_CASES.map(({ name, codec }) => ({
    name,
    codec: codec.codec as string,
    payload: updatePayload({
      parsed: { codec: codec as ParsedTask['codec'] },
      update: r.update,
      updateKind: 'delta',
      baseCheckpoint: f.base,
    }).payload,
  }));
}
