// `npm run bench -- settings [--quick]`: the proxy grid the demo's model and learning rate are chosen by
// (docs/model.md, "Choosing the demo's settings"). Each setting trains centrally with trainLocal on every 7th training
// window of SOTU split by president, at a constant rate, for a fixed time; the held-out loss on 256 evenly spaced eval
// windows (the evaluators' selection) is taken at half the time and at the end. The optimiser starts afresh a few
// times (a 25-step speed probe, then a call or two per half), as it does at each of a worker's tasks. On two cores the
// step count decides, so the figures move with the machine's load: compare settings from the same run. Full: 8
// settings × 60 s; --quick: 2 × 10 s.
import { buildManifest, heldOutExamples, lmWindows, loadBuiltin, shardDataset } from '../datasets/index.ts';
import { createModel, disposeModel, evaluate, initBackend, modelConfig, trainLocal } from '../model/index.ts';
import type { Bench } from './lib.ts';

interface Setting {
  d: number;
  layers: number;
  context: number;
  lr: number;
  batch: number;
}

const FULL: Setting[] = [
  { d: 32, layers: 1, context: 32, lr: 0.005, batch: 16 },
  { d: 32, layers: 1, context: 32, lr: 0.01, batch: 16 },
  { d: 32, layers: 1, context: 32, lr: 0.01, batch: 32 },
  { d: 32, layers: 2, context: 32, lr: 0.01, batch: 16 },
  { d: 48, layers: 1, context: 32, lr: 0.01, batch: 16 },
  { d: 64, layers: 1, context: 32, lr: 0.01, batch: 16 },
  { d: 64, layers: 1, context: 32, lr: 0.01, batch: 64 },
  { d: 64, layers: 2, context: 64, lr: 0.005, batch: 16 },
];

const bench: Bench = async ({ quick, report, progress }) => {
  await initBackend({ backend: 'auto' });
  const seconds = quick ? 10 : 60;
  const settings = quick ? FULL.slice(0, 2) : FULL;
  const ds = loadBuiltin('sotu');
  const plan = shardDataset(ds, { scheme: 'partition', seed: 1 });
  const manifest = buildManifest(ds, plan);
  const trainRecords = plan.shards.flat().map((i) => ds.records[i]!);
  for (const s of settings) {
    const label = `d${s.d}_L${s.layers}_ctx${s.context}_lr${s.lr}_b${s.batch}`;
    progress(`${label}: ${seconds} s of training`);
    // Heads of 16 dimensions (tiny's), an MLP 4x wide.
    const config = modelConfig('tiny', {
      dModel: s.d,
      nLayer: s.layers,
      context: s.context,
      nHead: s.d / 16,
      dMlp: 4 * s.d,
    });
    const windows = lmWindows(trainRecords, s.context + 1, { dropLast: true }).filter((_, i) => i % 7 === 0);
    // The evaluators' own selection (coordinator, attesters): 256 evenly spaced held-out windows.
    const evalSet = heldOutExamples(ds, manifest, { kind: 'lm', context: s.context }).examples;
    const model = createModel(config, { seed: 1 });
    let trainedMs = 0;
    let steps = 0;
    let segment = 0;
    // Each trainLocal call starts its optimiser afresh, as each of a worker's tasks does: so a few long calls at a
    // constant rate, not many short ones.
    const trainSteps = async (n: number) => {
      const t0 = performance.now();
      const schedule = { decay: 'constant' as const };
      await trainLocal({
        model,
        examples: windows,
        steps: n,
        batchSize: s.batch,
        lr: s.lr,
        schedule,
        seed: segment++,
      });
      trainedMs += performance.now() - t0;
      steps += n;
    };
    await trainSteps(25);
    for (const at of [seconds / 2, seconds]) {
      // Sized by the speed so far; the first sizing can fall short (the probe pays for warming up): top up.
      for (let left = at * 1000 - trainedMs; left > 0.02 * at * 1000; left = at * 1000 - trainedMs) {
        await trainSteps(Math.max(1, Math.round(left / (trainedMs / steps))));
      }
      const { loss } = await evaluate(model, evalSet);
      const note = `${steps} steps; d${s.d}, ${s.layers} layer(s), context ${s.context}, lr ${s.lr} (constant), batch ${s.batch}, ${windows.length} training windows`;
      report({ name: `settings.loss_at_${at}s_${label}`, value: loss, unit: 'nats/byte', note });
    }
    disposeModel(model);
  }
};

export default bench;
