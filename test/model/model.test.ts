import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import {
  batchLoss,
  createModel,
  disposeModel,
  evaluate,
  generate,
  getWeights,
  initBackend,
  makeBatch,
  ModelError,
  paramSpecs,
  setWeights,
  trainLocal,
  learningRate,
  lmHead,
  modelConfig,
  trunk,
  kernelsActive,
  type AttentionMode,
  type TrainLocalParameters,
} from '../../model/index.ts';
import { expectAllClose, lmWindows, tinyLm } from './helpers.ts';

// On wasm, the backend a trainer runs offline: the same tests took 2.5x the CPU on cpu, which the determinism test and
// the wasm-against-cpu tests below still cover.
/** A fresh tiny LM (seed 4) trained on 16 windows, batch 4, at each optimiser's test rate unless given; disposed after. */
async function trainFresh(options: Partial<TrainLocalParameters> & { optimiser: 'adamw' | 'sgd' }) {
  const model = createModel(tinyLm(), { seed: 4 });
  try {
    return await trainLocal({
      model,
      examples: lmWindows(16, 16),
      batchSize: 4,
      lr: options.optimiser === 'sgd' ? 0.05 : 3e-3,
      ...options,
    });
  } finally {
    disposeModel(model);
  }
}

describe('model: transformer LM (wasm backend)', () => {
  before(async () => {
    await initBackend({ backend: 'wasm' });
  });

  it('names parameters in the documented order', () => {
    const names = paramSpecs(modelConfig('tiny', { nLayer: 2 })).map((s) => s.name);
    expect(names.slice(0, 4)).to.deep.equal(['wte', 'wpe', 'h.0.ln_1.g', 'h.0.ln_1.b']);
    expect(names).to.include.members(['h.1.attn.c_attn.w', 'h.1.mlp.c_proj.b']);
    expect(names.slice(-2)).to.deep.equal(['ln_f.g', 'ln_f.b']);
    expect(names.length).to.equal(2 + 2 * 12 + 2);
  });

  it('rejects bad configs with a code', () => {
    expect(() => modelConfig('tiny', { dModel: 30, nHead: 4 }))
      .to.throw(ModelError)
      .with.property('code', 'E_MODEL_CONFIG');
    expect(() => modelConfig('tiny', { kind: 'classifier' }))
      .to.throw(ModelError)
      .with.property('code', 'E_MODEL_CONFIG');
  });

  it('lowers the loss on a repeated batch', async () => {
    const model = createModel(tinyLm(), { seed: 3 });
    const examples = lmWindows(8, 16);
    const losses: number[] = [];
    // 15 steps at 1e-2 take the loss as low as 40 at 3e-3 did (5.58 to 1.36 on this seed), for a third of the CPU.
    await trainLocal({
      model,
      examples,
      steps: 15,
      batchSize: 8,
      lr: 1e-2,
      schedule: { decay: 'constant' },
      onStep: (s) => losses.push(s.loss),
    });
    expect(losses).to.have.length(15);
    expect(losses[0]).to.be.greaterThan(5); // ~ln(260) at init
    expect(losses[14]).to.be.lessThan(losses[0]! - 2);
    disposeModel(model);
  });

  it('gives bit-identical runs for the same seed, different ones for another, on wasm and cpu', async () => {
    const run = async (seed: number) => {
      const model = createModel(tinyLm({ dropout: 0.1 }), { seed: 5 });
      const r = await trainLocal({
        model,
        examples: lmWindows(20, 16),
        steps: 6,
        batchSize: 4,
        lr: 1e-3,
        seed,
        clipNorm: 1,
      });
      disposeModel(model);
      return r;
    };
    for (const backend of ['wasm', 'cpu'] as const) {
      await initBackend({ backend });
      const [a, b, c] = [await run(7), await run(7), await run(8)];
      expect(a.trainLoss, backend).to.equal(b.trainLoss);
      a.update.forEach((t, i) =>
        expect(Buffer.from(t.data.buffer).equals(Buffer.from(b.update[i]!.data.buffer)), backend).to.equal(
          true,
        ),
      );
      expect(c.trainLoss, backend).to.not.equal(a.trainLoss);
    }
    await initBackend({ backend: 'wasm' });
  });

  it('returns the update as trained minus base weights, with sample counts', async () => {
    const model = createModel(tinyLm(), { seed: 1 });
    const base = getWeights(model);
    const r = await trainLocal({
      model,
      examples: lmWindows(10, 16),
      epochs: 2,
      batchSize: 4,
      lr: 1e-3,
      optimiser: 'sgd',
    });
    expect(r.steps).to.equal(5);
    expect(r.samples).to.equal(20);
    expect(r.tokens).to.equal(20 * 16);
    expect(r.updateKind).to.equal('delta');
    const after = getWeights(model);
    r.update.forEach((u, i) => {
      expect(u.name).to.equal(base[i]!.name);
      for (let j = 0; j < u.data.length; j += 97)
        expect(u.data[j]).to.be.closeTo(after[i]!.data[j]! - base[i]!.data[j]!, 1e-6);
    });
    expect(r.update.some((u) => u.data.some((x) => x !== 0))).to.equal(true);
    disposeModel(model);
  });

  it('pulls weights toward the base with FedProx', async () => {
    const norm = async (fedProxMu: number) => {
      const model = createModel(tinyLm(), { seed: 1 });
      const r = await trainLocal({
        model,
        examples: lmWindows(16, 16),
        steps: 15,
        batchSize: 4,
        lr: 0.05,
        optimiser: 'sgd',
        fedProxMu,
      });
      disposeModel(model);
      return Math.sqrt(r.update.reduce((s, u) => s + u.data.reduce((a, x) => a + x * x, 0), 0));
    };
    expect(await norm(5)).to.be.lessThan(await norm(0));
  });

  it('takes the same steps on host copies as with tf ops (AdamW and SGD, FedProx, clipping)', async () => {
    for (const optimiser of ['adamw', 'sgd'] as const) {
      // Few steps: Adam normalises the float noise of gradients that are zero in exact arithmetic (the key bias's),
      // so the two ways drift apart on those elements over many steps.
      const run = (hostStep: boolean) =>
        trainFresh({ steps: 3, optimiser, fedProxMu: 0.1, clipNorm: 0.5, hostStep });
      const [host, ops] = [await run(true), await run(false)];
      expect(host.lastLoss).to.be.closeTo(ops.lastLoss, 1e-4);
      // The key bias's gradient is zero in exact arithmetic (softmax ignores a constant added to every score), so
      // Adam turns its float noise into whole steps of either sign: those elements are left out.
      const d = tinyLm().dModel;
      const kept = (name: string, data: Float32Array) =>
        name.endsWith('attn.c_attn.b') ? [...data.subarray(0, d), ...data.subarray(2 * d)] : [...data];
      host.update.forEach((u, i) => {
        const max = u.data.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
        const [a, b] = [kept(u.name, u.data), kept(u.name, ops.update[i]!.data)];
        expectAllClose(a, b, 1e-5 + 1e-3 * max, `${optimiser} ${u.name}`);
      });
    }
  });

  it('takes bit-identical steps in the heap (fedtune kernels) and on host copies (AdamW and SGD, FedProx, clipping)', async () => {
    await initBackend({ backend: 'wasm' });
    expect(kernelsActive(), 'the heap step needs the kernels').to.equal(true);
    for (const optimiser of ['adamw', 'sgd'] as const) {
      for (const [fedProxMu, clipNorm] of [
        [0, 0],
        [0.1, 0.5],
      ] as const) {
        const run = (heapStep: boolean) => trainFresh({ steps: 6, optimiser, fedProxMu, clipNorm, heapStep });
        const [heap, host] = [await run(true), await run(false)];
        expect(heap.lastLoss, `${optimiser} ${fedProxMu} ${clipNorm}`).to.equal(host.lastLoss);
        const bytes = (x: Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
        heap.update.forEach((u, i) => {
          const same = bytes(u.data).equals(bytes(host.update[i]!.data));
          expect(same, `${optimiser} mu ${fedProxMu} clip ${clipNorm}: ${u.name}`).to.equal(true);
        });
      }
    }
  });

  it('computes the cross-entropy of log-softmax, with the same gradients', () => {
    const model = createModel(tinyLm(), { seed: 5 });
    const batch = makeBatch(model, lmWindows(3, 16));
    if (batch.kind !== 'lm') throw new Error('an LM batch');
    const vars = [...model.params.values()];
    const measure = (reference: boolean) =>
      tf.tidy(() => {
        const { value, grads } = tf.variableGrads(() => {
          if (!reference) return batchLoss(model, batch).loss;
          const logits = lmHead(model, trunk(model, batch.ids, batch.b, batch.t));
          const oneHot = tf.oneHot(tf.tensor1d(batch.targets, 'int32'), logits.shape[1]);
          return tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(logits), oneHot), 1))) as tf.Scalar;
        }, vars);
        return [value.dataSync()[0]!, ...vars.map((v) => Array.from(grads[v.name]!.dataSync()))] as [
          number,
          ...number[][],
        ];
      });
    const [fused, reference] = [measure(false), measure(true)];
    expect(fused[0]).to.be.closeTo(reference[0], 1e-5);
    for (let i = 1; i < fused.length; i++)
      expectAllClose(fused[i] as number[], reference[i] as number[], 1e-6, `gradient ${i}`);
    disposeModel(model);
  });

  it('follows warmup then cosine decay', () => {
    expect(learningRate(1, 0, 100, { warmupSteps: 10 })).to.be.closeTo(0.1, 1e-12);
    expect(learningRate(1, 9, 100, { warmupSteps: 10 })).to.equal(1);
    expect(learningRate(1, 10, 100, { warmupSteps: 10 })).to.equal(1);
    expect(learningRate(1, 99, 100, { warmupSteps: 10, minLrRatio: 0.1 })).to.be.closeTo(0.1, 1e-12);
  });

  // Every step runs the same code, so a leak shows after a few: 4 x 12 steps, with each optimiser both on host copies
  // (the default on cpu and wasm) and with tf ops (the tensorflow backend's way, which keeps tensors between steps).
  it('leaks no tensors over many steps, in the heap, on host copies and with tf ops', async () => {
    const model = createModel(tinyLm({ dropout: 0.1 }), { seed: 2 });
    const examples = lmWindows(16, 16);
    await trainLocal({ model, examples, steps: 2, batchSize: 4, lr: 1e-3, fedProxMu: 0.01, clipNorm: 1 });
    const before = tf.memory();
    for (let i = 0; i < 6; i++) {
      await trainLocal({
        model,
        examples,
        steps: 12,
        batchSize: 4,
        lr: 1e-3,
        fedProxMu: 0.01,
        clipNorm: 1,
        optimiser: i % 2 ? 'sgd' : 'adamw',
        hostStep: i < 4,
        heapStep: i < 2,
      });
      await evaluate(model, examples.slice(0, 4));
      generate(model, [256], { maxTokens: 3 });
    }
    const after = tf.memory();
    expect(after.numTensors).to.equal(before.numTensors);
    expect(after.numBytes).to.equal(before.numBytes);
    disposeModel(model);
  });

  it('evaluates loss and bits per byte', async () => {
    const model = createModel(tinyLm(), { seed: 1 });
    const r = await evaluate(model, lmWindows(6, 16), { batchSize: 4 });
    expect(r.count).to.equal(96);
    expect(r.loss).to.be.closeTo(Math.log(260), 0.3);
    expect(r.bitsPerByte).to.be.closeTo(r.loss / Math.LN2, 1e-9);
    disposeModel(model);
  });

  it('generates reproducibly; temperature 0 is greedy and top-k 1 matches it', () => {
    const model = createModel(tinyLm(), { seed: 1 });
    const a = generate(model, [256, 97], { maxTokens: 8, temperature: 0.8, topK: 20, seed: 4 });
    const b = generate(model, [256, 97], { maxTokens: 8, temperature: 0.8, topK: 20, seed: 4 });
    expect([...a]).to.deep.equal([...b]);
    expect(a.length).to.equal(8);
    const greedy = generate(model, [256, 97], { maxTokens: 20, temperature: 0 });
    expect([...generate(model, [256, 97], { maxTokens: 20, topK: 1, seed: 9 })]).to.deep.equal([...greedy]);
    expect(() => generate(model, [], { maxTokens: 1 })).to.throw(ModelError);
    disposeModel(model);
  });

  it('validates names and shapes in setWeights and changes nothing on error', () => {
    const model = createModel(tinyLm(), { seed: 1 });
    const w = getWeights(model);
    const bad = w.map((t) =>
      t.name === 'ln_f.b' ? { ...t, shape: [t.shape[0]! + 1], data: new Float32Array(t.data.length + 1) } : t,
    );
    expect(() => setWeights(model, bad))
      .to.throw(ModelError)
      .with.property('code', 'E_WEIGHTS_SHAPE');
    expect(() =>
      setWeights(model, [{ name: 'nope', shape: [1], data: new Float32Array(1) }], { partial: true }),
    )
      .to.throw(ModelError)
      .with.property('code', 'E_WEIGHTS_UNKNOWN');
    expect(() => setWeights(model, w.slice(1)))
      .to.throw(ModelError)
      .with.property('code', 'E_WEIGHTS_MISSING');
    const other = createModel(tinyLm(), { seed: 2 });
    setWeights(other, w);
    expect(getWeights(other).map((t) => Array.from(t.data.slice(0, 5)))).to.deep.equal(
      w.map((t) => Array.from(t.data.slice(0, 5))),
    );
    disposeModel(model);
    disposeModel(other);
  });

  it('refuses malformed LM input with a code', () => {
    const model = createModel(tinyLm(), { seed: 1 });
    expect(() => makeBatch(model, [new Int32Array(18)]))
      .to.throw(ModelError)
      .with.property('code', 'E_MODEL_INPUT');
    expect(() => makeBatch(model, [Int32Array.from([1, 2, 999])]))
      .to.throw(ModelError)
      .with.property('code', 'E_MODEL_INPUT');
    disposeModel(model);
  });
});

describe('model: wasm backend', () => {
  after(async () => {
    await initBackend({ backend: 'cpu' });
  });

  it('computes the same loss and gradients on wasm (2-D block attention) as on cpu', async function () {
    this.timeout(120000);
    const config = tinyLm({ nHead: 4, nLayer: 2 });
    const examples = lmWindows(3, 16);
    const measure = () => {
      const model = createModel(config, { seed: 11 });
      const batch = makeBatch(model, examples);
      const vars = [...model.params.values()];
      const out = tf.tidy(() => {
        const { value, grads } = tf.variableGrads(() => batchLoss(model, batch).loss, vars);
        return [value.dataSync()[0]!, ...vars.map((v) => Array.from(grads[v.name]!.dataSync().slice(0, 8)))];
      });
      disposeModel(model);
      return out as [number, ...number[][]];
    };
    await initBackend({ backend: 'cpu' });
    const cpu = measure();
    const info = await initBackend({ backend: 'wasm' });
    expect(info.name).to.equal('wasm');
    const wasm = measure();
    expect(wasm[0]).to.be.closeTo(cpu[0], 1e-4);
    for (let i = 1; i < cpu.length; i++) {
      (cpu[i] as number[]).forEach((g, j) =>
        expect((wasm[i] as number[])[j]).to.be.closeTo(g, 1e-4 + 1e-3 * Math.abs(g)),
      );
    }
  });

  it('gives the same loss and gradients with the fused ops as with plain tf ops, on wasm and cpu', async function () {
    this.timeout(120000);
    const config = tinyLm({ nHead: 4, nLayer: 2, context: 64 });
    const examples = lmWindows(4, 64);
    for (const backend of ['wasm', 'cpu'] as const) {
      await initBackend({ backend });
      const model = createModel(config, { seed: 12 });
      const batch = makeBatch(model, examples);
      const vars = [...model.params.values()];
      const measure = (fused: boolean, attention: AttentionMode) =>
        tf.tidy(() => {
          const { value, grads } = tf.variableGrads(
            () => batchLoss(model, batch, { fused, attention: { mode: attention, blockRows: 64 } }).loss,
            vars,
          );
          return [value.dataSync()[0]!, ...vars.map((v) => Array.from(grads[v.name]!.dataSync()))] as [
            number,
            ...number[][],
          ];
        });
      const plain = measure(false, 'batched');
      // On wasm fedtune's kernels (kernels.ts), with either attention; on cpu the host layer norm.
      for (const attention of backend === 'wasm' ? (['fused', 'blocks'] as const) : (['blocks'] as const)) {
        const fast = measure(true, attention);
        expect(fast[0]).to.be.closeTo(plain[0], 1e-5);
        for (let i = 1; i < plain.length; i++) {
          const g = plain[i] as number[];
          const max = g.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
          expect(max, `gradient ${i} is not all zero`).to.be.greaterThan(0);
          expectAllClose(fast[i] as number[], g, 1e-6 + 1e-4 * max, `${backend} ${attention} gradient ${i}`);
        }
      }
      disposeModel(model);
    }
  });

  it('lowers the loss on wasm too and leaks nothing', async () => {
    await initBackend({ backend: 'wasm' });
    const model = createModel(tinyLm(), { seed: 3 });
    const examples = lmWindows(8, 16);
    await trainLocal({ model, examples, steps: 1, batchSize: 8, lr: 3e-3 });
    const before = tf.memory().numTensors;
    const r = await trainLocal({
      model,
      examples,
      steps: 40,
      batchSize: 8,
      lr: 3e-3,
      schedule: { decay: 'constant' },
    });
    expect(r.lastLoss).to.be.lessThan(3);
    expect(tf.memory().numTensors).to.equal(before);
    disposeModel(model);
  });
});
