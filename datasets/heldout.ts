// The examples a model trains and is scored on, and the held-out selection every evaluator uses (coordinator, attesting
// member, verifier): evenly spaced over the eval split, so they all score exactly the same examples.
import { DatasetError } from './errors.ts';
import { classificationExamples, lmWindows, type ClassificationExample } from './examples.ts';
import { evalRecords, type DatasetManifest } from './manifest.ts';
import type { Dataset, DatasetRecord } from './types.ts';

/** What the examples depend on in a model's config. */
export interface ExampleShape {
  kind: 'lm' | 'classifier';
  context: number;
}

export type Example = Int32Array | ClassificationExample;

/** LM windows of context+1 tokens, or labelled texts for a classifier. */
export function examplesFor(shape: ExampleShape, records: DatasetRecord[], labels: string[] = []): Example[] {
  return shape.kind === 'classifier'
    ? classificationExamples(records, labels, shape.context)
    : lmWindows(records, shape.context + 1);
}

/** Held-out examples scored by default. */
export const DEFAULT_EVAL_EXAMPLES = 256;

export function heldOutExamples(
  dataset: Dataset,
  manifest: DatasetManifest,
  shape: ExampleShape,
  { maxExamples = DEFAULT_EVAL_EXAMPLES }: { maxExamples?: number } = {},
): { examples: Example[]; available: number } {
  const all = examplesFor(shape, evalRecords(dataset, manifest), manifest.labels ?? dataset.labels);
  if (all.length === 0)
    throw new DatasetError(
      'E_EVAL_EMPTY',
      `dataset ${manifest.name} has no held-out examples to evaluate on`,
    );
  const n = Math.min(all.length, Math.max(1, maxExamples));
  return {
    examples: Array.from({ length: n }, (_, i) => all[Math.floor((i * all.length) / n)]!),
    available: all.length,
  };
}
