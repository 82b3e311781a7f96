// Re-executing a worker's task (round verify --recompute): a real task on the real engine gives the payload the
// trainer's own path gave, bit for bit, on wasm and on cpu, also across backends within the stated tolerance; cheats
// (a random vector of the update's norm, training on another shard, a scaled update) are rejected; and under the
// residual rule a top-k worker's round 2 is rebuilt from its published rounds alone.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { pino } from 'pino';
import { encodeUpdate } from '../../aggregation/index.ts';
import {
  buildManifest,
  loadDataset,
  shardDataset,
  shardRecords,
  type DatasetRecord,
} from '../../datasets/index.ts';
import {
  createModel,
  createRng,
  disposeModel,
  initBackend,
  modelConfig,
  modelToSafetensors,
  type NamedTensors,
} from '../../model/index.ts';
import type { Task } from '../../proto/index.ts';
import {
  ResidualBook,
  WORK_TOLERANCE,
  chainRounds,
  compareWork,
  parseTask,
  reexecuteChain,
  reexecuteTask,
  trainTask,
  updatePayload,
} from '../../worker/index.ts';

const logger = pino({ level: 'silent' });
const model = modelConfig('tiny', { context: 16, dModel: 16, dMlp: 64 });

describe('worker: re-execution of a task', function () {
  this.timeout(120_000);
  let base: Uint8Array;
  let base2: Uint8Array;
  let shard: (i: number) => DatasetRecord[];
  let root: string;

  before(async () => {
    await initBackend({ backend: 'wasm' });
    const m = createModel(model, { seed: 7 });
    base = modelToSafetensors(m);
    disposeModel(m);
    const m2 = createModel(model, { seed: 8 });
    base2 = modelToSafetensors(m2);
    disposeModel(m2);
    const moby = loadDataset({ name: 'moby-dick' });
    const manifest = buildManifest(moby, shardDataset(moby, { scheme: 'iid', shards: 16, seed: 3 }));
    root = manifest.root;
    shard = (i) => shardRecords(moby, manifest, i);
  });

  function task(o: { codec?: Record<string, unknown>; round?: number; steps?: number } = {}): Task {
    return {
      taskId: `t${o.round ?? 1}`,
      proposal: 4,
      round: o.round ?? 1,
      base: { id: `0x${'00'.repeat(32)}`, bytes: 0, url: 'http://127.0.0.1:1' },
      shards: [1],
      datasetRoot: root,
      modelJson: JSON.stringify(model),
      hyperparamsJson: JSON.stringify({
        localSteps: o.steps ?? 4,
        batchSize: 8,
        learningRate: 0.01,
        seed: 1_234_567 + (o.round ?? 1),
      }),
      codecJson: JSON.stringify(o.codec ?? { codec: 'dense' }),
      deadlineMs: 0,
    };
  }

  /** What the trainer uploads for a task: its own path (trainTask, then updatePayload), on the active backend. */
  async function trainerPayload(t: Task, baseBytes = base, records = shard(1)) {
    const parsed = parseTask(t);
    const result = await trainTask({ parsed, baseCheckpoint: baseBytes, records, logger });
    return updatePayload({
      parsed,
      update: result.update,
      updateKind: result.updateKind,
      baseCheckpoint: baseBytes,
    });
  }

  const scaled = (u: NamedTensors, s: number): NamedTensors =>
    u.map((t) => ({ ...t, data: t.data.map((v) => v * s) }));

  it('reproduces the trainer’s payload bit for bit on wasm, and on cpu', async () => {
    for (const backend of ['wasm', 'cpu'] as const) {
      await initBackend({ backend });
      const t = task({ steps: backend === 'cpu' ? 2 : 4 });
      const published = await trainerPayload(t);
      await initBackend({ backend: backend === 'wasm' ? 'cpu' : 'wasm' }); // reexecute switches back itself
      const again = await reexecuteTask({ task: t, baseCheckpoint: base, records: shard(1), backend });
      expect(again.backend).to.equal(backend);
      // Node has wasm SIMD, and fedtune's kernels of version 1 run on it; the build without SIMD, or a release with
      // other kernels, rounds differently and is named apart.
      expect(again.flavour).to.equal(backend === 'wasm' ? 'wasm-simd-k1' : 'cpu');
      const verdict = compareWork({ payload: published.payload, codec: 'dense' }, again);
      expect(verdict, `${backend}: ${verdict.detail}`).to.include({ ok: true, exact: true, distance: 0 });
    }
  });

  it('accepts the same task run on the other backend within the tolerance, and rejects cheats of the same size', async () => {
    const t = task({ steps: 2 });
    const onWasm = await reexecuteTask({ task: t, baseCheckpoint: base, records: shard(1), backend: 'wasm' });
    const onCpu = await reexecuteTask({ task: t, baseCheckpoint: base, records: shard(1), backend: 'cpu' });
    // Published from cpu, re-executed on wasm: not identical, within the tolerance.
    const across = compareWork({ payload: onCpu.payload, codec: 'dense', flavour: onCpu.flavour }, onWasm);
    expect(across, across.detail).to.include({ ok: true, exact: false, conclusive: true });
    expect(across.distance)
      .to.be.greaterThan(0)
      .and.lessThan(WORK_TOLERANCE / 100);
    // The same bytes claimed as wasm-simd-k1 work: on the worker's own flavour only identical bytes pass.
    const claimed = compareWork({ payload: onCpu.payload, codec: 'dense', flavour: 'wasm-simd-k1' }, onWasm);
    expect(claimed, claimed.detail).to.include({ ok: false, conclusive: true });
    expect(claimed.detail).to.match(/not bit-identical on the worker's own backend wasm-simd-k1/);

    // A random vector with the trained update's norm.
    const rng = createRng(5);
    const noise = onWasm.update.map((u) => ({ ...u, data: u.data.map(() => rng.normal()) }));
    const norm = (u: NamedTensors) =>
      Math.sqrt(u.reduce((s, x) => s + x.data.reduce((a, v) => a + v * v, 0), 0));
    const random = scaled(noise, norm(onWasm.update) / norm(noise));
    // The same task's settings trained on another shard; the update scaled by 1.25 and by 0.5.
    const otherShard = (await trainerPayload(t, base, shard(5))).payload;
    const cheats: [string, Uint8Array][] = [
      ['random', encodeUpdate(random, { codec: 'dense' })],
      ['other shard', otherShard],
      ['x1.25', encodeUpdate(scaled(onWasm.update, 1.25), { codec: 'dense' })],
      ['x0.5', encodeUpdate(scaled(onWasm.update, 0.5), { codec: 'dense' })],
    ];
    for (const [what, payload] of cheats) {
      // Against the worker's own flavour: conclusive. Flavour unknown: rejected, and far beyond the tolerance.
      const own = compareWork({ payload, codec: 'dense', flavour: 'wasm-simd-k1' }, onWasm);
      expect(own, `${what}: ${own.detail}`).to.include({ ok: false, conclusive: true });
      expect(own.detail).to.match(/not the task's work/);
      const unknown = compareWork({ payload, codec: 'dense' }, onWasm);
      expect(unknown, `${what}: ${unknown.detail}`).to.include({ ok: false, conclusive: false });
      expect(unknown.distance, what).to.be.greaterThan(10 * WORK_TOLERANCE);
    }

    // Not an update of the task's tensors at all: incomparable, not a crash.
    const garbage = compareWork({ payload: new Uint8Array([1, 2, 3]), codec: 'dense' }, onWasm);
    expect(garbage).to.include({ ok: false, distance: Infinity });
    expect(garbage.detail).to.match(/E_CODEC_MALFORMED/);
    const wrongCodec = compareWork({ payload: onWasm.payload, codec: 'int8' }, onWasm);
    expect(wrongCodec.ok).to.equal(false);
  });

  it('rebuilds a top-k worker’s round 2 from its rounds 1 and 2 under the residual rule', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fedtune-residual-'));
    try {
      const codec = { codec: 'topk', fraction: 0.05 };
      const t1 = task({ codec, round: 1 });
      const t2 = task({ codec, round: 2 });
      // The worker, as runner.ts does it: round 1 from zero, its residual kept once acknowledged, round 2 from it.
      let book = new ResidualBook(join(dir, 'residuals'));
      expect(await book.before(4, 1)).to.equal(undefined);
      const p1 = parseTask(t1);
      const r1 = await trainTask({ parsed: p1, baseCheckpoint: base, records: shard(1), logger });
      const u1 = updatePayload({ parsed: p1, update: r1.update, updateKind: 'delta', baseCheckpoint: base });
      await book.keep(4, 1, u1.state!);
      book = new ResidualBook(join(dir, 'residuals')); // a restarted worker reads it back
      const prior = await book.before(4, 2);
      expect(prior?.residual.size).to.be.greaterThan(0);
      const p2 = parseTask(t2);
      const r2 = await trainTask({ parsed: p2, baseCheckpoint: base2, records: shard(1), logger });
      const u2 = updatePayload({
        parsed: p2,
        update: r2.update,
        updateKind: 'delta',
        baseCheckpoint: base2,
        priorState: prior,
      });
      // updatePayload never advances the state it is given.
      expect([...prior!.residual.values()][0]).to.deep.equal([...u1.state!.residual.values()][0]);

      // The verifier: the worker contributed to rounds 1 and 2, so round 2 is rebuilt from both, in order.
      expect(chainRounds([1, 2], 2)).to.deep.equal([1, 2]);
      expect(chainRounds([1, 3], 3)).to.deep.equal([3]);
      const chain = await reexecuteChain(
        [
          { task: t1, baseCheckpoint: base, records: shard(1) },
          { task: t2, baseCheckpoint: base2, records: shard(1) },
        ],
        { backend: 'wasm' },
      );
      const verdict = compareWork({ payload: u2.payload, codec: 'topk' }, chain[1]!);
      expect(verdict, verdict.detail).to.include({ ok: true, exact: true });
      // Round 2 alone (as if the residual had been dropped) is not what the worker sent.
      const alone = await reexecuteTask({ task: t2, baseCheckpoint: base2, records: shard(1) });
      expect(compareWork({ payload: u2.payload, codec: 'topk' }, alone).exact).to.equal(false);
      // Round 2's upload was not acknowledged here (nothing kept for it), so a round-3 task starts from zero.
      expect(await new ResidualBook(join(dir, 'residuals')).before(4, 3)).to.equal(undefined);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
