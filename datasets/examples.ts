// Turning a shard's records into training examples: packed LM windows, and (tokens, label) pairs for classification.
import { DatasetError } from './errors.ts';
import { CLS, PAD, encode } from './tokenizer.ts';
import type { DatasetRecord } from './types.ts';

export interface LmWindowsOptions {
  /**
   * Tokens between the start of one window and the next; defaults to contextLength (no overlap).
   * A model that predicts token t+1 from tokens ..t uses window[0..T-2] as input and window[1..T-1] as target.
   */
  stride?: number;
  /** Drop a final window that would need padding (default false: pad it with PAD). */
  dropLast?: boolean;
}

/**
 * LM training windows: every record framed as BOS + bytes + EOS, the records concatenated in order, the stream
 * cut into windows of exactly `contextLength` tokens. Only the last window can hold PAD (unless dropLast).
 */
export function lmWindows(
  records: DatasetRecord[],
  contextLength: number,
  { stride = contextLength, dropLast = false }: LmWindowsOptions = {},
): Int32Array[] {
  if (!(Number.isInteger(contextLength) && contextLength >= 2)) {
    throw new DatasetError(
      'E_EXAMPLES_BAD_PARAM',
      `context length must be an integer >= 2, got ${contextLength}`,
    );
  }
  if (!(Number.isInteger(stride) && stride >= 1 && stride <= contextLength)) {
    throw new DatasetError(
      'E_EXAMPLES_BAD_PARAM',
      `stride must be an integer in 1..${contextLength}, got ${stride}`,
    );
  }
  const parts = records.map((r) => encode(r.text, { bos: true, eos: true }));
  const total = parts.reduce((a, p) => a + p.length, 0);
  const stream = new Int32Array(total);
  let o = 0;
  for (const p of parts) {
    stream.set(p, o);
    o += p.length;
  }
  const windows: Int32Array[] = [];
  for (let start = 0; start < total; start += stride) {
    const end = start + contextLength;
    if (end > total) {
      if (dropLast) break;
      const w = new Int32Array(contextLength).fill(PAD);
      w.set(stream.subarray(start, total));
      windows.push(w);
      break;
    }
    windows.push(stream.slice(start, end));
    if (end === total) break;
  }
  return windows;
}

export interface ClassificationExample {
  /** contextLength tokens: the text's bytes (truncated to contextLength - 1), then CLS, then PAD. */
  tokens: Int32Array;
  /** Index into the dataset's labels. */
  label: number;
  /** Where CLS sits: the position a classifier head reads (after all the text, so a causal model has seen it). */
  clsIndex: number;
}

/** (tokens, label index) pairs; a record without a label, or with one not in `labels`, is an error. */
export function classificationExamples(
  records: DatasetRecord[],
  labels: string[],
  contextLength: number,
): ClassificationExample[] {
  if (!(Number.isInteger(contextLength) && contextLength >= 2)) {
    throw new DatasetError(
      'E_EXAMPLES_BAD_PARAM',
      `context length must be an integer >= 2, got ${contextLength}`,
    );
  }
  const index = new Map(labels.map((l, i) => [l, i]));
  return records.map((r) => {
    const label = r.label === undefined ? undefined : index.get(r.label);
    if (label === undefined) {
      throw new DatasetError(
        r.label === undefined ? 'E_DATASET_UNLABELLED' : 'E_DATASET_UNKNOWN_LABEL',
        r.label === undefined
          ? `record "${r.id}" has no label; classification needs one of ${labels.join(', ')}`
          : `record "${r.id}" has label "${r.label}"; expected one of ${labels.join(', ')}`,
      );
    }
    const bytes = encode(r.text);
    const n = Math.min(bytes.length, contextLength - 1);
    const tokens = new Int32Array(contextLength).fill(PAD);
    tokens.set(bytes.subarray(0, n));
    tokens[n] = CLS;
    return { tokens, label, clsIndex: n };
  });
}
