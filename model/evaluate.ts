// Evaluation on held-out examples: mean loss, bits per byte (LM), accuracy (classifier).
import * as tf from '@tensorflow/tfjs';
import { ModelError } from './errors.ts';
import type { Model } from './gpt.ts';
import type { AttentionOptions } from './ops.ts';
import { batchLoss, makeBatch, type Example } from './train.ts';

export interface EvaluateOptions {
  batchSize?: number;
  attention?: AttentionOptions;
}

export interface EvaluateResult {
  /** Mean cross-entropy per target (nats). */
  loss: number;
  /** LM: loss in bits per target byte (the tokenizer is byte-level: one token per byte). */
  bitsPerByte?: number;
  /** Classifier: the fraction of examples whose arg-max label is right. */
  accuracy?: number;
  /** Targets scored: tokens (LM) or examples (classifier). */
  count: number;
}

/** Scores every example once, without dropout, in order. */
export async function evaluate(
  model: Model,
  examples: readonly Example[],
  { batchSize = 16, attention }: EvaluateOptions = {},
): Promise<EvaluateResult> {
  if (examples.length === 0) throw new ModelError('E_EVAL_NO_DATA', 'no evaluation examples');
  let lossSum = 0;
  let count = 0;
  let correct = 0;
  for (let at = 0; at < examples.length; at += batchSize) {
    const batch = makeBatch(model, examples.slice(at, at + batchSize));
    const n = batch.kind === 'lm' ? batch.targets.length : batch.labels.length;
    const [lossT, predT] = tf.tidy(() => {
      const { loss, logits } = batchLoss(model, batch, { training: false, attention });
      return [loss, batch.kind === 'classifier' ? tf.argMax(logits, 1) : tf.scalar(0)];
    });
    lossSum += (await lossT.data())[0]! * n;
    if (batch.kind === 'classifier') {
      const pred = await predT.data();
      batch.labels.forEach((label, i) => {
        if (pred[i] === label) correct++;
      });
    }
    lossT.dispose();
    predT.dispose();
    count += n;
  }
  const loss = lossSum / count;
  return model.config.kind === 'lm'
    ? { loss, bitsPerByte: loss / Math.LN2, count }
    : { loss, accuracy: correct / count, count };
}
