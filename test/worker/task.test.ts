// A worker's task: its settings are validated, its shards checked against the dataset root, its base checkpoint
// fetched and verified, and training on real text yields an update named like the model's parameters.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { pino } from 'pino';
import { buildManifest, loadDataset, shardDataset, type Dataset } from '../../datasets/index.ts';
import {
  createModel,
  disposeModel,
  initBackend,
  modelConfig,
  modelToSafetensors,
  paramSpecs,
} from '../../model/index.ts';
import { openStore, serveCheckpoints } from '../../checkpoints/index.ts';
import type { Task } from '../../proto/index.ts';
import { fetchBaseCheckpoint, parseTask, trainTask, verifiedShardRecords } from '../../worker/task.ts';

const logger = pino({ level: 'silent' });
const model = modelConfig('tiny', { context: 32 });

function task(overrides: Partial<Task> = {}): Task {
  return {
    taskId: 't',
    proposal: 0,
    round: 1,
    base: { id: `0x${'00'.repeat(32)}`, bytes: 0, url: 'http://127.0.0.1:1' },
    shards: [0, 2],
    datasetRoot: `0x${'00'.repeat(32)}`,
    modelJson: JSON.stringify(model),
    hyperparamsJson: JSON.stringify({ localSteps: 3, batchSize: 4, learningRate: 0.003, seed: 1 }),
    codecJson: JSON.stringify({ codec: 'dense' }),
    deadlineMs: Date.now() + 60_000,
    ...overrides,
  };
}

function expectCode(fn: () => unknown, code: string) {
  try {
    fn();
  } catch (error) {
    expect((error as { code?: string }).code, (error as Error).message).to.equal(code);
    return;
  }
  expect.fail(`expected ${code}`);
}

describe('worker: task', () => {
  let moby: Dataset;
  before(async () => {
    await initBackend({ backend: 'cpu' });
    moby = loadDataset({ name: 'moby-dick' });
  });

  it('parses a task and refuses malformed settings with E_TASK_INVALID', () => {
    const parsed = parseTask(task());
    expect(parsed.hyper).to.include({
      localSteps: 3,
      batchSize: 4,
      learningRate: 0.003,
      optimiser: 'adamw',
      fedProxMu: 0,
    });
    expect(parsed.hyper).to.include({ schedule: 'cosine', minLrRatio: 0.1, warmupSteps: 0 });
    const scheduled = parseTask(
      task({
        hyperparamsJson:
          '{"localSteps": 5, "learningRate": 0.01, "schedule": "constant", "minLrRatio": 0.5, "warmupSteps": 2, "gradClipNorm": 0.5}',
      }),
    );
    expect(scheduled.hyper).to.include({
      schedule: 'constant',
      minLrRatio: 0.5,
      warmupSteps: 2,
      gradClipNorm: 0.5,
      learningRate: 0.01,
    });
    expectCode(
      () => parseTask(task({ hyperparamsJson: '{"localSteps": 2, "schedule": "linear"}' })),
      'E_TASK_INVALID',
    );
    expectCode(
      () => parseTask(task({ hyperparamsJson: '{"localSteps": 2, "minLrRatio": 2}' })),
      'E_TASK_INVALID',
    );
    expect(parsed.codec.codec).to.equal('dense');
    expectCode(() => parseTask(task({ hyperparamsJson: '[1]' })), 'E_TASK_INVALID');
    expectCode(() => parseTask(task({ hyperparamsJson: '{"localSteps": -1}' })), 'E_TASK_INVALID');
    expectCode(
      () => parseTask(task({ hyperparamsJson: '{"localSteps": 2, "optimiser": "lion"}' })),
      'E_TASK_INVALID',
    );
    expectCode(() => parseTask(task({ modelJson: '{"kind":"lm","dModel":-3}' })), 'E_TASK_INVALID');
    expectCode(() => parseTask(task({ codecJson: '{}' })), 'E_TASK_INVALID');
  });

  it('returns the records of its shards when they match the root, and refuses altered data naming the shard', () => {
    const manifest = buildManifest(moby, shardDataset(moby, { scheme: 'iid', shards: 4, seed: 3 }));
    const records = verifiedShardRecords(moby, manifest, manifest.root, [0, 2]);
    expect(records.length).to.equal(manifest.shards[0]!.records.length + manifest.shards[2]!.records.length);

    const altered: Dataset = { ...moby, records: moby.records.map((r) => ({ ...r })) };
    const victim = manifest.shards[2]!.records[1]!;
    altered.records[victim]!.text = altered.records[victim]!.text.replace(/e/, 'E');
    expectCode(() => verifiedShardRecords(altered, manifest, manifest.root, [0, 2]), 'E_SHARD_MISMATCH');
    // Shard 0 alone is untouched and still verifies.
    expect(verifiedShardRecords(altered, manifest, manifest.root, [0])).to.have.length(
      manifest.shards[0]!.records.length,
    );
    expectCode(() => verifiedShardRecords(moby, manifest, `0x${'ab'.repeat(32)}`, [0]), 'E_SHARD_MISMATCH');
    expectCode(() => verifiedShardRecords(moby, manifest, manifest.root, [9]), 'E_TASK_INVALID');
  });

  it('fetches the verified base checkpoint and trains it into an update named like the parameters', async function () {
    this.timeout(120_000);
    const dir = await mkdtemp(join(tmpdir(), 'fedtune-worker-'));
    const store = await openStore(join(dir, 'store'));
    const server = await serveCheckpoints({ store });
    try {
      const base = createModel(model, { seed: 7 });
      const bytes = modelToSafetensors(base);
      disposeModel(base);
      const { id } = await store.put(bytes, { model: model as never, chunkSize: 16 * 1024 });
      const manifest = buildManifest(moby, shardDataset(moby, { scheme: 'iid', shards: 8, seed: 3 }));
      const t = task({
        base: { id, bytes: bytes.length, url: server.url },
        datasetRoot: manifest.root,
        shards: [1],
      });
      const parsed = parseTask(t);

      const fetched = await fetchBaseCheckpoint({ task: t, cacheDir: join(dir, 'cache'), logger });
      expect(Buffer.from(fetched).equals(Buffer.from(bytes))).to.equal(true);
      const records = verifiedShardRecords(moby, manifest, t.datasetRoot, t.shards);
      const losses: number[] = [];
      const result = await trainTask({
        parsed,
        baseCheckpoint: fetched,
        records,
        logger,
        onStep: (s) => losses.push(s.loss),
      });
      expect(result.updateKind).to.equal('delta');
      expect(result.steps).to.equal(3);
      expect(result.samples).to.equal(12);
      expect(losses).to.have.length(3);
      expect(result.update.map((u) => u.name)).to.deep.equal(paramSpecs(model).map((p) => p.name));
      // Training moved the weights, and every delta is finite.
      const norm = Math.sqrt(result.update.reduce((s, u) => s + u.data.reduce((a, v) => a + v * v, 0), 0));
      expect(norm).to.be.greaterThan(0);
      expect(result.update.every((u) => u.data.every(Number.isFinite))).to.equal(true);

      // A second fetch of the same id comes from the cache even with the server gone.
      await server.close();
      const again = await fetchBaseCheckpoint({ task: t, cacheDir: join(dir, 'cache'), logger });
      expect(again.length).to.equal(bytes.length);
    } finally {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
