// `npm run bench -- topk-feedback [--quick]`: what dropping top-k error feedback every round would cost (the
// alternative to the residual rule, docs/model.md "Reproducible training"). Two trainers on two Moby Dick shards,
// R rounds of S local steps (tiny LM, batch 16, lr 0.01, wasm), FedAvg of the decoded updates; the held-out loss
// after the last round, per codec, with the residual carried and with it dropped.
import {
  createTopKState,
  decodeUpdate,
  encodeUpdate,
  type CodecName,
  type TopKState,
} from '../aggregation/index.ts';
import {
  buildManifest,
  examplesFor,
  heldOutExamples,
  loadDataset,
  shardDataset,
  shardRecords,
} from '../datasets/index.ts';
import {
  createModel,
  disposeModel,
  evaluate,
  getWeights,
  initBackend,
  modelConfig,
  setWeights,
  trainLocal,
  type NamedTensors,
} from '../model/index.ts';
import type { Bench } from './lib.ts';

const bench: Bench = async ({ quick, report, progress }) => {
  const rounds = quick ? 2 : 4;
  const steps = quick ? 10 : 50;
  await initBackend({ backend: 'wasm' });
  const cfg = modelConfig('tiny', { context: 32 });
  const ds = loadDataset({ name: 'moby-dick' });
  const manifest = buildManifest(ds, shardDataset(ds, { scheme: 'iid', shards: 8, seed: 3 }));
  const shards = [0, 1].map((s) => examplesFor(cfg, shardRecords(ds, manifest, s)));
  const held = heldOutExamples(ds, manifest, cfg, { maxExamples: 512 }).examples;
  const init = createModel(cfg, { seed: 7 });
  const start = getWeights(init);
  disposeModel(init);

  async function run(codec: CodecName, fraction: number, carry: boolean): Promise<number[]> {
    let w: NamedTensors = start.map((t) => ({ ...t, data: t.data.slice() }));
    const states: TopKState[] = [createTopKState(), createTopKState()];
    const losses: number[] = [];
    for (let r = 1; r <= rounds; r++) {
      const decoded: Float32Array[][] = [];
      for (let i = 0; i < 2; i++) {
        const m = createModel(cfg, { seed: 0 });
        setWeights(m, w);
        const res = await trainLocal({
          model: m,
          examples: shards[i]!,
          steps,
          batchSize: 16,
          lr: 0.01,
          seed: 1000 * r + i,
        });
        disposeModel(m);
        if (!carry) states[i] = createTopKState();
        const payload = encodeUpdate(res.update, { codec, fraction, state: states[i] });
        decoded.push(decodeUpdate(payload, { codec }).map((t) => t.data));
      }
      w = w.map((t, j) => {
        const d = new Float32Array(t.data.length);
        for (let k = 0; k < d.length; k++)
          d[k] = t.data[k]! + (decoded[0]![j]![k]! + decoded[1]![j]![k]!) / 2;
        return { ...t, data: d };
      });
      const m = createModel(cfg, { seed: 0 });
      setWeights(m, w);
      losses.push((await evaluate(m, held, { batchSize: 64 })).loss);
      disposeModel(m);
    }
    return losses;
  }

  const cases: [string, CodecName, number, boolean][] = [
    ['dense', 'dense', 1, false],
    ['top-k 1%, error feedback', 'topk', 0.01, true],
    ['top-k 1%, residual dropped each round', 'topk', 0.01, false],
    ['top-k 10%, error feedback', 'topk', 0.1, true],
    ['top-k 10%, residual dropped each round', 'topk', 0.1, false],
  ];
  for (const [name, codec, fraction, carry] of cases) {
    progress(name);
    const losses = await run(codec, fraction, carry);
    report({
      name: `held-out loss after ${rounds} rounds: ${name}`,
      value: losses.at(-1)!,
      unit: 'nats',
      note: `per round: ${losses.map((l) => l.toFixed(3)).join(' → ')}; 2 trainers × ${steps} steps`,
    });
  }
};

export default bench;
