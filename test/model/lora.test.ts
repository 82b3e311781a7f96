import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import {
  addLora,
  batchLoss,
  classProbabilities,
  countParams,
  createModel,
  disposeModel,
  evaluate,
  frozenNames,
  getWeights,
  initBackend,
  makeBatch,
  mergeLora,
  modelConfig,
  setWeights,
  trainLocal,
  withClassifierHead,
  type LoraConfig,
  type Model,
  type LoraTarget,
} from '../../model/index.ts';
import { classExamples, expectAllClose, lmWindows, tinyLm } from './helpers.ts';

const lora = {
  rank: 4,
  alpha: 8,
  targets: ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'] as const,
};

/** Every weight `frozenNames` lists is bit-identical to `before`, which getWeights took of them before training. */
function expectFrozenUnchanged(model: Model, before: ReturnType<typeof getWeights>): void {
  getWeights(model, { names: frozenNames(model) }).forEach((t, i) =>
    expect(Buffer.from(t.data.buffer).equals(Buffer.from(before[i]!.data.buffer)), t.name).to.equal(true),
  );
}

/**
 * A tiny 2-label classifier with `config`'s adapters, the weights frozenNames lists taken before training, and 5 steps
 * of training on it.
 */
async function trainClassifierLora(config: LoraConfig, options: { seed?: number } = {}) {
  const base = createModel(modelConfig('tiny', { kind: 'classifier', numLabels: 2, context: 16 }), {
    seed: 1,
  });
  const model = addLora(base, config, options);
  const frozen = getWeights(model, { names: frozenNames(model) });
  const r = await trainLocal({ model, examples: classExamples(32), steps: 5, batchSize: 8, lr: 1e-2 });
  return { base, model, frozen, r };
}

describe('model: LoRA and the classifier head (cpu backend)', () => {
  before(async () => {
    await initBackend({ backend: 'cpu' });
  });

  it('trains only the adapters: base weights stay bit-identical, the update is the adapters', async () => {
    const base = createModel(tinyLm(), { seed: 1 });
    const model = addLora(base, { ...lora, targets: [...lora.targets] }, { seed: 2 });
    const frozen = getWeights(model, { names: frozenNames(model) });
    const r = await trainLocal({ model, examples: lmWindows(16, 16), steps: 4, batchSize: 4, lr: 1e-2 });
    expect(r.updateKind).to.equal('values');
    expect(r.update.map((u) => u.name)).to.deep.equal([
      'h.0.attn.c_attn.lora_a',
      'h.0.attn.c_attn.lora_b',
      'h.0.attn.c_proj.lora_a',
      'h.0.attn.c_proj.lora_b',
      'h.0.mlp.c_fc.lora_a',
      'h.0.mlp.c_fc.lora_b',
      'h.0.mlp.c_proj.lora_a',
      'h.0.mlp.c_proj.lora_b',
    ]);
    expect(r.update.find((u) => u.name.endsWith('lora_b'))!.data.some((x) => x !== 0)).to.equal(true);
    expectFrozenUnchanged(model, frozen);
    disposeModel(base);
    disposeModel(model);
  });

  it('with freezeA trains only B (FFA-LoRA): A stays at its seeded init, the update is B and the head', async () => {
    const config = { rank: 2, alpha: 4, targets: ['attn.c_attn', 'mlp.c_fc'] as LoraTarget[], freezeA: true };
    const { base, model, frozen, r } = await trainClassifierLora(config, { seed: 2 });
    expect(model.config.lora!.freezeA).to.equal(true);
    expect(frozenNames(model)).to.include.members(['h.0.attn.c_attn.lora_a', 'h.0.mlp.c_fc.lora_a', 'wte']);
    expect(r.update.map((u) => u.name)).to.deep.equal([
      'cls.w',
      'cls.b',
      'h.0.attn.c_attn.lora_b',
      'h.0.mlp.c_fc.lora_b',
    ]);
    for (const u of r.update.filter((t) => t.name.endsWith('lora_b')))
      expect(
        u.data.some((x) => x !== 0),
        u.name,
      ).to.equal(true);
    expectFrozenUnchanged(model, frozen);
    // The same seed gives every trainer the same A; without freezeA it trains, and the counts say which travel.
    const plain = addLora(base, { ...config, freezeA: false }, { seed: 2 });
    expect(Array.from(plain.params.get('h.0.mlp.c_fc.lora_a')!.dataSync())).to.deep.equal(
      Array.from(frozen.find((t) => t.name === 'h.0.mlp.c_fc.lora_a')!.data),
    );
    const aValues = 32 * 2 + 32 * 2;
    expect(countParams(plain.config, { trainableOnly: true })).to.equal(
      countParams(model.config, { trainableOnly: true }) + aValues,
    );
    for (const m of [base, model, plain]) disposeModel(m);
  });

  it('validates freezeA: true or false, absent by default so existing configs are unchanged', () => {
    const targets: LoraTarget[] = ['attn.c_attn'];
    expect(modelConfig('tiny', { lora: { rank: 2, alpha: 4, targets } }).lora).to.deep.equal({
      rank: 2,
      alpha: 4,
      targets,
    });
    expect(
      modelConfig('tiny', { lora: { rank: 2, alpha: 4, targets, freezeA: true } }).lora!.freezeA,
    ).to.equal(true);
    const bad = { rank: 2, alpha: 4, targets, freezeA: 'yes' } as unknown as LoraConfig;
    expect(() => modelConfig('tiny', { lora: bad }))
      .to.throw(/config\.lora\.freezeA must be true or false, got "yes"/)
      .with.property('code', 'E_MODEL_CONFIG');
  });

  it('starts equal to the base, and merging gives the same outputs as base + adapters', async () => {
    const base = createModel(tinyLm({ nLayer: 2 }), { seed: 1 });
    const model = addLora(base, { ...lora, targets: ['attn.c_attn', 'mlp.c_proj'] }, { seed: 2 });
    const batch = makeBatch(model, lmWindows(2, 16));
    const logits = (m: typeof model) => tf.tidy(() => Array.from(batchLoss(m, batch).logits.dataSync()));
    expect(logits(model)).to.deep.equal(logits(base)); // B starts at zero
    await trainLocal({ model, examples: lmWindows(16, 16), steps: 4, batchSize: 4, lr: 2e-2 });
    const merged = mergeLora(model);
    expect(merged.config.lora).to.equal(undefined);
    expect([...merged.params.keys()]).to.deep.equal([...base.params.keys()]);
    const [a, b, c] = [logits(model), logits(merged), logits(base)];
    expectAllClose(b, a, 1e-4, 'merged logit');
    expect(a.some((x, i) => Math.abs(x - c[i]!) > 1e-3)).to.equal(true);
    for (const m of [base, model, merged]) disposeModel(m);
  });

  it('loads an adapter update into a fresh LoRA model with setWeights(partial)', async () => {
    const base = createModel(tinyLm(), { seed: 1 });
    const a = addLora(base, { ...lora, targets: ['attn.c_attn'] }, { seed: 2 });
    const r = await trainLocal({ model: a, examples: lmWindows(8, 16), steps: 5, batchSize: 4, lr: 1e-2 });
    const b = addLora(base, { ...lora, targets: ['attn.c_attn'] }, { seed: 3 });
    setWeights(b, r.update, { partial: true });
    const batch = makeBatch(a, lmWindows(2, 16));
    const [la, lb] = [a, b].map((m) => tf.tidy(() => batchLoss(m, batch).loss.dataSync()[0]!));
    expect(lb).to.equal(la);
    for (const m of [base, a, b]) disposeModel(m);
  });

  it("gives each text a label distribution, the same alone as in a batch, whose log-loss is evaluate's", async () => {
    const model = createModel(modelConfig('tiny', { kind: 'classifier', numLabels: 3, context: 16 }), {
      seed: 4,
    });
    const examples = classExamples(6, 5);
    const probs = classProbabilities(
      model,
      examples.map((e) => e.tokens),
    );
    expect(probs).to.have.length(6);
    for (const p of probs) {
      expect(p).to.have.length(3);
      expect(p.reduce((a, b) => a + b, 0)).to.be.closeTo(1, 1e-5);
    }
    const alone = classProbabilities(model, [examples[3]!.tokens])[0]!;
    alone.forEach((v, i) => expect(v).to.be.closeTo(probs[3]![i]!, 1e-5));
    const logLoss = -examples.reduce((a, e, i) => a + Math.log(probs[i]![e.label]!), 0) / examples.length;
    expect(logLoss).to.be.closeTo((await evaluate(model, examples)).loss, 1e-4);
    disposeModel(model);
  });

  it('fine-tunes a classifier with LoRA: adapters and the new head travel, the trunk stays', async () => {
    const { base, model, frozen, r } = await trainClassifierLora({
      rank: 2,
      alpha: 4,
      targets: ['attn.c_attn'],
    });
    expect(r.update.map((u) => u.name)).to.deep.equal([
      'cls.w',
      'cls.b',
      'h.0.attn.c_attn.lora_a',
      'h.0.attn.c_attn.lora_b',
    ]);
    expectFrozenUnchanged(model, frozen);
    disposeModel(base);
    disposeModel(model);
  });

  it("puts a seeded classifier head on a language model's trunk, refusing another architecture", () => {
    const lm = createModel(tinyLm(), { seed: 1 });
    const config = tinyLm({ kind: 'classifier', numLabels: 3 });
    const a = withClassifierHead(lm, config, { seed: 5 });
    const b = withClassifierHead(lm, config, { seed: 5 });
    expect(a.config.kind).to.equal('classifier');
    for (const [name, v] of lm.params)
      expect(Array.from(a.params.get(name)!.dataSync())).to.deep.equal(Array.from(v.dataSync()));
    expect(a.params.get('cls.w')!.shape).to.deep.equal([32, 3]);
    expect(Array.from(a.params.get('cls.w')!.dataSync())).to.deep.equal(
      Array.from(b.params.get('cls.w')!.dataSync()),
    );
    expect(Array.from(a.params.get('cls.w')!.dataSync()).some((x) => x !== 0)).to.equal(true);
    // The head goes on first, then the adapters: the classifier fine-tune's round-0 base.
    const tuned = addLora(a, { ...lora, targets: [...lora.targets] }, { seed: 5 });
    expect(Array.from(tuned.params.get('cls.w')!.dataSync())).to.deep.equal(
      Array.from(a.params.get('cls.w')!.dataSync()),
    );
    expect(() => withClassifierHead(lm, tinyLm({ kind: 'classifier', numLabels: 2, dModel: 64 }))).to.throw(
      /architecture/,
    );
    expect(() => withClassifierHead(a, config)).to.throw(/language model/);
    for (const m of [lm, a, b, tuned]) disposeModel(m);
  });
});

// Training to an accuracy takes 120 steps: on wasm, the backend a trainer runs offline, a ninth of the CPU time it takes
// on cpu (whose steps are bit-identical to wasm's; the tests above train on cpu).
describe('model: the classifier learns (wasm backend)', () => {
  after(async () => {
    await initBackend({ backend: 'cpu' });
  });

  it('learns a sequence classification task, reporting accuracy', async function () {
    this.timeout(120000);
    await initBackend({ backend: 'wasm' });
    const model = createModel(modelConfig('tiny', { kind: 'classifier', numLabels: 2, context: 16 }), {
      seed: 1,
    });
    const train = classExamples(96, 2);
    const held = classExamples(48, 3);
    const before = await evaluate(model, held);
    await trainLocal({
      model,
      examples: train,
      steps: 120,
      batchSize: 16,
      lr: 3e-3,
      schedule: { warmupSteps: 10 },
    });
    const after = await evaluate(model, held);
    expect(after.count).to.equal(48);
    expect(after.loss).to.be.lessThan(before.loss);
    expect(after.accuracy).to.be.greaterThan(0.8);
    disposeModel(model);
  });
});
