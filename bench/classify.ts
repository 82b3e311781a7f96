// `npm run bench -- classify [--quick]`: the classifier fine-tune's held-out accuracy against always answering the most
// common label. In process, no chain: a tiny LM pre-trained on SOTU, then LoRA (rank 8, all four projections) and a
// 2-label head trained federated over spam-assassin in 4 shards with Dirichlet(0.5) label skew, dealt to 2 clients (2
// shards each, as the demo's 2 trainers), FedAvg of the clients' adapter and head values each round (the demo's
// `--classify` stage, docs/model.md), on wasm; twice: A and B training (`classify.accuracy`), then A frozen
// (`freezeA`, FFA-LoRA: `classify.accuracy_freeze_a`).
import {
  buildManifest,
  examplesFor,
  heldOutExamples,
  loadDataset,
  shardDataset,
  shardRecords,
} from '../datasets/index.ts';
import {
  addLora,
  createModel,
  disposeModel,
  evaluate,
  initBackend,
  modelConfig,
  setWeights,
  trainLocal,
  withClassifierHead,
  type Example,
  type LoraConfig,
  type Model,
  type ModelConfig,
  type NamedTensors,
} from '../model/index.ts';
import type { Bench } from './lib.ts';

const SHARDS = 4;
const CLIENTS = 2;
const ALPHA = 0.5;
const LORA: LoraConfig = {
  rank: 8,
  alpha: 16,
  targets: ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'],
};

/** FedAvg: the clients' values weighted by their sample counts. */
function fedAvg(updates: { values: NamedTensors; samples: number }[]): NamedTensors {
  const total = updates.reduce((n, u) => n + u.samples, 0);
  return updates[0]!.values.map((t, j) => {
    const data = new Float32Array(t.data.length);
    for (const u of updates) {
      const w = u.samples / total;
      const src = u.values[j]!.data;
      for (let k = 0; k < data.length; k++) data[k] += w * src[k]!;
    }
    return { ...t, data };
  });
}

const bench: Bench = async ({ quick, report, progress }) => {
  const pretrainSteps = quick ? 100 : 300;
  const rounds = quick ? 2 : 3;
  const localSteps = quick ? 150 : 300;
  const lr = 0.005;
  const batchSize = 16;
  const { name: backend } = await initBackend({ backend: 'wasm' });

  const lmConfig = modelConfig('tiny');
  const sotu = loadDataset({ name: 'sotu' });
  const sotuManifest = buildManifest(sotu, shardDataset(sotu, { scheme: 'iid', shards: 1, seed: 0 }));
  progress(`pre-training the tiny LM on SOTU: ${pretrainSteps} steps`);
  const lm = createModel(lmConfig, { seed: 1 });
  await trainLocal({
    model: lm,
    examples: examplesFor(lmConfig, shardRecords(sotu, sotuManifest, 0)),
    steps: pretrainSteps,
    batchSize,
    lr: 0.01,
    seed: 1,
  });

  const spam = loadDataset({ name: 'spam-assassin' });
  const manifest = buildManifest(
    spam,
    shardDataset(spam, { scheme: 'dirichlet', shards: SHARDS, alpha: ALPHA, seed: 0 }),
  );
  const config: ModelConfig = { ...lmConfig, kind: 'classifier', numLabels: 2 };
  const labels = manifest.labels ?? spam.labels ?? [];
  const clients = Array.from({ length: CLIENTS }, (_, c) =>
    examplesFor(
      config,
      Array.from({ length: SHARDS / CLIENTS }, (_, i) =>
        shardRecords(spam, manifest, c + i * CLIENTS),
      ).flat(),
      labels,
    ),
  );
  const held = heldOutExamples(spam, manifest, config, { maxExamples: Number.MAX_SAFE_INTEGER }).examples;
  const heldLabels = held.map((e) => (e as { label: number }).label);
  const counts = [0, 1].map((l) => heldLabels.filter((x) => x === l).length);
  const majority = Math.max(...counts) / held.length;
  const spamShare = clients.map((c) => {
    const spamCount = c.filter((e) => (e as { label: number }).label === 1).length;
    return `${c.length} (${((100 * spamCount) / c.length).toFixed(0)}% label 1)`;
  });
  progress(`clients: ${spamShare.join(', ')}; held out: ${held.length}, majority ${majority.toFixed(3)}`);

  // Every client starts each round from the base (pre-trained trunk, seeded head, fresh adapters) plus the global values.
  const federated = async (lora: LoraConfig) => {
    const fresh = (): Model => {
      const withHead = withClassifierHead(lm, config, { seed: 2 });
      const model = addLora(withHead, lora, { seed: 3 });
      disposeModel(withHead);
      return model;
    };
    const scored = async (values: NamedTensors | null) => {
      const model = fresh();
      if (values !== null) setWeights(model, values, { partial: true });
      const r = await evaluate(model, held as Example[], { batchSize: 64 });
      disposeModel(model);
      return r.accuracy ?? NaN;
    };
    const accuracy: number[] = [await scored(null)];
    let global: NamedTensors | null = null;
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    for (let r = 1; r <= rounds; r++) {
      const updates: { values: NamedTensors; samples: number }[] = [];
      for (let c = 0; c < CLIENTS; c++) {
        progress(
          `${lora.freezeA ? 'B only' : 'A and B'}: round ${r}/${rounds}: client ${c + 1}/${CLIENTS}, ${localSteps} steps`,
        );
        const model = fresh();
        if (global !== null) setWeights(model, global, { partial: true });
        const res = await trainLocal({
          model,
          examples: clients[c]!,
          steps: localSteps,
          batchSize,
          lr,
          seed: 100 * r + c,
        });
        updates.push({ values: res.update, samples: res.samples });
        disposeModel(model);
      }
      global = fedAvg(updates);
      accuracy.push(await scored(global));
    }
    const cpu = process.cpuUsage(cpu0);
    return {
      accuracy,
      seconds: (performance.now() - t0) / 1000,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      trainable: global === null ? 0 : global.reduce((n, t) => n + t.data.length, 0),
    };
  };

  // Today's LoRA (A and B train, each averaged apart) against FFA-LoRA (A frozen at its seeded init, B alone trains).
  for (const [suffix, lora] of [
    ['', LORA],
    ['_freeze_a', { ...LORA, freezeA: true }],
  ] as const) {
    const { accuracy, seconds, cpuSeconds, trainable } = await federated(lora);
    const setup = `${CLIENTS} clients of ${SHARDS / CLIENTS} spam-assassin shards each (Dirichlet(${ALPHA}) label skew), ${rounds} rounds × ${localSteps} local steps, batch ${batchSize}, lr ${lr}, LoRA rank ${LORA.rank} on all four projections${lora.freezeA ? ' with A frozen (freezeA: B alone trains)' : ''} + 2-label head (${trainable} trainable values), tiny LM pre-trained ${pretrainSteps} steps on SOTU, FedAvg, ${backend}`;
    report({
      name: `classify.accuracy${suffix}`,
      value: accuracy.at(-1)!,
      unit: 'fraction',
      ref: majority,
      ratio: accuracy.at(-1)! / majority,
      note: `held-out accuracy after the last round on all ${held.length} held-out e-mails; ref: the majority-class rate (always answering the most common label); per round: ${accuracy.map((a) => a.toFixed(3)).join(' → ')} (round 0: the seeded head); ${setup}`,
    });
    report({
      name: `classify.accuracy_before${suffix}`,
      value: accuracy[0]!,
      unit: 'fraction',
      ref: majority,
      ratio: accuracy[0]! / majority,
      note: 'the pre-trained trunk with its seeded head and fresh adapters, before any round',
    });
    report({
      name: `classify.train_seconds${suffix}`,
      value: seconds,
      unit: 's',
      note: `wall time of the ${rounds} rounds (${rounds * CLIENTS * localSteps} local steps, one process, no chain); ${cpuSeconds.toFixed(1)} CPU s`,
    });
  }
  disposeModel(lm);
};

export default bench;
