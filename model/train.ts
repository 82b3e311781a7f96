// Local training for one task: batches from the examples, the loss, the optimiser step, FedProx, and the update.
import * as tf from '@tensorflow/tfjs';
import type { Logger } from 'pino';
import { classifierLogits, packClassBatch, type ClassExample } from './classifier.ts';
import { ModelError } from './errors.ts';
import { checkIndices, kernelsActive, softmaxRows, xentGrad } from './kernels.ts';
import { lmHead, param, trainableNames, trunk, type ForwardOptions, type Model } from './gpt.ts';
import type { AttentionOptions } from './ops.ts';
import {
  Optimiser,
  clipByGlobalNorm,
  learningRate,
  type OptimiserName,
  type OptimiserOptions,
  type Schedule,
} from './optim.ts';
import { HostOptimiser } from './host-optim.ts';
import { HeapOptimiser } from './heap-optim.ts';
import { createRng, permutation, type Rng } from './rng.ts';
import { getWeights, subtractWeights, type NamedTensors } from './weights.ts';

/** An LM example is a window of t+1 tokens (t ≤ context): inputs are the first t, targets the last t. */
export type LmExample = Int32Array;
export type Example = LmExample | ClassExample;

/**
 * Mean cross-entropy (nats) of logits [n, classes] against integer targets, with the fused gradient (softmax - onehot)/n:
 * on wasm, Softmax is one fast kernel where logSoftmax is several slow ones (Exp, Max, Log). Off the tensorflow backend
 * the loss is one JS pass over the softmax's host copy, and the gradient one more (no scalar-broadcast kernels, which
 * are slow on wasm); with fedtune's kernels (`fused`, wasm) the softmax and the gradient are theirs.
 */
export function crossEntropy(logits: tf.Tensor2D, targets: Int32Array, fused: boolean): tf.Scalar {
  const [n, classes] = logits.shape;
  if (tf.getBackend() !== 'tensorflow') {
    const kernels = fused && kernelsActive();
    if (kernels) checkIndices(targets, n, classes, 'targets'); // the gradient kernel writes where they point
    const host = tf.customGrad((x, save) => {
      const probs = kernels ? softmaxRows(x as tf.Tensor2D) : tf.softmax(x as tf.Tensor2D);
      const p = probs.dataSync() as Float32Array;
      let sum = 0;
      // The floor keeps a hopeless prediction finite (69 nats) instead of -log(0) when the target's p underflows.
      for (let i = 0; i < n; i++) sum -= Math.log(Math.max(p[i * classes + targets[i]!]!, 1e-30));
      if (kernels) (save as tf.GradSaveFunc)([probs]);
      return {
        value: tf.scalar(sum / n),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const k = (dy.dataSync()[0] ?? 0) / n;
          if (kernels) return xentGrad(saved[0] as tf.Tensor2D, targets, k);
          const g = new Float32Array(n * classes);
          for (let i = 0; i < n * classes; i++) g[i] = p[i]! * k;
          for (let i = 0; i < n; i++) g[i * classes + targets[i]!] -= k;
          return tf.tensor2d(g, [n, classes]);
        },
      };
    });
    return host(logits) as tf.Scalar;
  }
  const oneHotValues = new Float32Array(n * classes);
  for (let i = 0; i < n; i++) oneHotValues[i * classes + targets[i]!] = 1;
  const f = tf.customGrad((x, save) => {
    // Made and saved inside: tensors the forward creates are disposed after it unless saved for the gradient.
    const oneHot = tf.tensor2d(oneHotValues, [n, classes]);
    const p = tf.softmax(x as tf.Tensor2D);
    (save as tf.GradSaveFunc)([p, oneHot]);
    const picked = tf.maximum(tf.sum(tf.mul(p, oneHot), 1), 1e-30);
    return {
      value: tf.div(tf.neg(tf.sum(tf.log(picked))), n),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(tf.sub(saved[0]!, saved[1]!), tf.div(dy, n)),
    };
  });
  return f(logits) as tf.Scalar;
}

export interface LmBatch {
  kind: 'lm';
  ids: Int32Array;
  targets: Int32Array;
  b: number;
  t: number;
}
export interface ClassBatch {
  kind: 'classifier';
  ids: Int32Array;
  last: Int32Array;
  labels: Int32Array;
  t: number;
}
export type Batch = LmBatch | ClassBatch;

/** Packs examples into one batch for the model's kind, checking their form. */
export function makeBatch(model: Model, examples: readonly Example[]): Batch {
  if (model.config.kind === 'classifier') {
    if (!examples.every((e) => !(e instanceof Int32Array) && e.tokens instanceof Int32Array)) {
      throw new ModelError('E_MODEL_INPUT', 'a classifier trains on { tokens: Int32Array, label } examples');
    }
    return { kind: 'classifier', ...packClassBatch(model, examples as ClassExample[]) };
  }
  const first = examples[0];
  if (!(first instanceof Int32Array))
    throw new ModelError('E_MODEL_INPUT', 'an LM trains on Int32Array windows of t+1 tokens');
  const t = first.length - 1;
  if (t < 1 || t > model.config.context) {
    throw new ModelError(
      'E_MODEL_INPUT',
      `LM windows must hold 2..${model.config.context + 1} tokens, got ${first.length}`,
    );
  }
  const b = examples.length;
  const ids = new Int32Array(b * t);
  const targets = new Int32Array(b * t);
  const vocab = model.config.vocabSize;
  examples.forEach((e, i) => {
    if (!(e instanceof Int32Array) || e.length !== t + 1) {
      throw new ModelError(
        'E_MODEL_INPUT',
        `every LM window in a batch must hold ${t + 1} tokens (example ${i})`,
      );
    }
    for (let j = 0; j <= t; j++) {
      if (!(e[j]! >= 0 && e[j]! < vocab))
        throw new ModelError('E_MODEL_INPUT', `token ${e[j]} is outside 0..${vocab - 1}`);
    }
    ids.set(e.subarray(0, t), i * t);
    targets.set(e.subarray(1), i * t);
  });
  return { kind: 'lm', ids, targets, b, t };
}

/** The batch's mean loss (nats per target) and, for a classifier, its logits. Call inside tf.tidy. */
export function batchLoss(
  model: Model,
  batch: Batch,
  options: ForwardOptions = {},
): { loss: tf.Scalar; logits: tf.Tensor2D } {
  const fused = options.fused ?? true;
  if (batch.kind === 'lm') {
    const logits = lmHead(model, trunk(model, batch.ids, batch.b, batch.t, options), fused);
    return { loss: crossEntropy(logits, batch.targets, fused), logits };
  }
  const logits = classifierLogits(model, batch.ids, batch.last, batch.t, options);
  return { loss: crossEntropy(logits, batch.labels, fused), logits };
}

export interface StepInfo {
  step: number;
  steps: number;
  loss: number;
  lr: number;
  gradNorm: number;
}

export interface TrainLocalParameters {
  model: Model;
  /** LM: Int32Array windows of t+1 tokens; classifier: { tokens, label }. */
  examples: readonly Example[];
  /** Optimiser steps; or give epochs (passes over the examples, rounded up to whole batches). */
  steps?: number;
  epochs?: number;
  batchSize: number;
  optimiser?: OptimiserName | OptimiserOptions;
  lr: number;
  schedule?: Schedule;
  /** Clip the gradients' global L2 norm to this; 0 or absent: no clipping. */
  clipNorm?: number;
  /** FedProx: adds mu/2·||w - w_base||² to the loss, w_base being the weights at the start of this call. */
  fedProxMu?: number;
  /** Batch order, dropout: the same seed and backend give the same run (bit-identical on cpu). */
  seed?: number;
  onStep?: (info: StepInfo) => void;
  logger?: Logger;
  /** Log every this many steps at debug level (default 50). */
  logEvery?: number;
  attention?: AttentionOptions;
  /** Run the optimiser step on host copies of the weights (default: on every backend but tensorflow). */
  hostStep?: boolean;
  /**
   * With hostStep on wasm: the same step by fedtune's kernels over the tensors in the backend's heap (heap-optim.ts;
   * the same bits). Default true where the kernels are active; false: JS loops over host copies.
   */
  heapStep?: boolean;
}

export interface TrainLocalResult {
  /** Full training: trained - base for every parameter. LoRA: the adapters' (and a classifier head's) values. */
  update: NamedTensors;
  updateKind: 'delta' | 'values';
  /** Examples seen (steps × batchSize). */
  samples: number;
  /** Target tokens seen (LM) or examples (classifier). */
  tokens: number;
  steps: number;
  /** Mean training loss over the steps (nats), without the proximal term. */
  trainLoss: number;
  lastLoss: number;
}

function* batchOrder(n: number, batchSize: number, rng: Rng): Generator<Int32Array> {
  let order = permutation(n, rng);
  let at = 0;
  while (true) {
    const idx = new Int32Array(batchSize);
    for (let i = 0; i < batchSize; i++) {
      if (at === n) {
        order = permutation(n, rng);
        at = 0;
      }
      idx[i] = order[at++]!;
    }
    yield idx;
  }
}

/** Trains the model in place for one task and returns the update. The model keeps the trained weights. */
export async function trainLocal(p: TrainLocalParameters): Promise<TrainLocalResult> {
  const {
    model,
    examples,
    batchSize,
    lr,
    schedule,
    clipNorm,
    fedProxMu = 0,
    seed = 0,
    onStep,
    logger,
    logEvery = 50,
  } = p;
  if (examples.length === 0) throw new ModelError('E_TRAIN_NO_DATA', 'no training examples');
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new ModelError('E_TRAIN_OPTIONS', `batchSize must be a positive integer`);
  const steps =
    p.steps ?? (p.epochs !== undefined ? Math.ceil((p.epochs * examples.length) / batchSize) : undefined);
  if (steps === undefined || !Number.isInteger(steps) || steps < 1) {
    throw new ModelError('E_TRAIN_OPTIONS', 'give steps or epochs (a positive number of optimiser steps)');
  }
  if (!(lr > 0)) throw new ModelError('E_TRAIN_OPTIONS', `lr must be positive, got ${lr}`);
  const optOptions: OptimiserOptions =
    typeof p.optimiser === 'object' ? p.optimiser : { name: p.optimiser ?? 'adamw' };
  if (optOptions.name !== 'adamw' && optOptions.name !== 'sgd') {
    throw new ModelError(
      'E_TRAIN_OPTIONS',
      `optimiser must be "adamw" or "sgd", got ${String(optOptions.name)}`,
    );
  }

  const names = trainableNames(model);
  const vars = names.map((name) => ({ name, v: param(model, name) }));
  const isLora = model.config.lora !== undefined;
  const start = getWeights(model, { names });
  // Where the weights live in this process's memory anyway (wasm, cpu), the step runs on host copies: see host-optim.ts.
  const onHost = p.hostStep ?? tf.getBackend() !== 'tensorflow';
  const heap = onHost && p.heapStep !== false && kernelsActive() ? new HeapOptimiser(optOptions, vars) : null;
  const host = onHost && heap === null ? new HostOptimiser(optOptions, vars) : null;
  const anchor = fedProxMu > 0 && !onHost ? vars.map(({ v }) => tf.keep(v.clone())) : [];
  const optimiser = !onHost ? new Optimiser(optOptions) : null;
  const rng = createRng(seed);
  const order = batchOrder(examples.length, batchSize, rng);
  let lossSum = 0;
  let lastLoss = NaN;
  let tokens = 0;
  try {
    for (let step = 0; step < steps; step++) {
      const idx = order.next().value as Int32Array;
      const batch = makeBatch(
        model,
        Array.from(idx, (i) => examples[i]!),
      );
      tokens += batch.kind === 'lm' ? batch.targets.length : batch.labels.length;
      const rate = learningRate(lr, step, steps, schedule);
      let gradNorm: number;
      if (heap !== null || host !== null) {
        // The loss and the gradients as tensors; the step is taken outside the tape.
        const [lossT, ...gradTs] = tf.tidy(() => {
          const { value, grads } = tf.variableGrads(
            () => batchLoss(model, batch, { training: true, rng, attention: p.attention }).loss,
            vars.map(({ v }) => v),
          );
          return [value, ...vars.map(({ v }) => grads[v.name]!)];
        });
        lastLoss = lossT!.dataSync()[0]!;
        const options = { lr: rate, clipNorm, fedProxMu };
        try {
          if (!Number.isFinite(lastLoss)) gradNorm = NaN;
          else if (heap !== null) gradNorm = heap.step(gradTs, options);
          else
            gradNorm = host!.step(
              gradTs.map((g) => g.dataSync() as Float32Array),
              options,
            );
        } finally {
          tf.dispose([lossT!, ...gradTs]);
        }
      } else {
        const [lossT, normT] = tf.tidy(() => {
          const { value, grads } = tf.variableGrads(
            () => batchLoss(model, batch, { training: true, rng, attention: p.attention }).loss,
            vars.map(({ v }) => v),
          );
          let gs = vars.map(({ v }) => grads[v.name]!);
          if (fedProxMu > 0)
            gs = gs.map((g, i) => tf.add(g, tf.mul(tf.sub(vars[i]!.v, anchor[i]!), fedProxMu)));
          const { grads: clipped, norm } = clipByGlobalNorm(gs, clipNorm);
          optimiser!.step(vars, clipped, rate);
          return [value, norm];
        });
        lastLoss = (await lossT.data())[0]!;
        gradNorm = (await normT.data())[0]!;
        lossT.dispose();
        normT.dispose();
      }
      if (!Number.isFinite(lastLoss))
        throw new ModelError('E_TRAIN_DIVERGED', `loss became ${lastLoss} at step ${step}`);
      lossSum += lastLoss;
      onStep?.({ step, steps, loss: lastLoss, lr: rate, gradNorm });
      if (logger && (step % logEvery === 0 || step === steps - 1)) {
        logger.debug({ step, steps, loss: lastLoss, lr: rate, gradNorm }, 'train step');
      }
      // Other work in this process (a worker's websocket, a bench's timers) gets a turn between steps.
      if (onHost) await new Promise<void>((r) => setImmediate(r));
    }
  } finally {
    heap?.dispose();
    optimiser?.dispose();
    anchor.forEach((t) => t.dispose());
  }
  const end = getWeights(model, { names });
  return {
    update: isLora ? end : subtractWeights(end, start),
    updateKind: isLora ? 'values' : 'delta',
    samples: steps * batchSize,
    tokens,
    steps,
    trainLoss: lossSum / steps,
    lastLoss,
  };
}
