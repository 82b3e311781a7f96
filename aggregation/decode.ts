// A payload as the update a strategy checks and folds: top-k payloads as their non-zero values, the rest dense.
import { SPARSE_CODECS, decodeSparseUpdate, decodeUpdate, type CodecName } from './codecs.ts';
import type { AnyClientUpdate } from './strategy.ts';

/**
 * Decodes a worker's payload for Strategy.check or accept: a top-k payload as its k values (checked and folded in
 * O(k), with the same verdict and the same bytes as the dense decoding), any other codec dense, into `out` when given.
 * Throws decodeUpdate's errors; names and shapes are the strategy's to check (E_UPDATE_SHAPE).
 */
export function decodeClientUpdate(
  payload: Uint8Array,
  params: { worker: string; samples: number; codec: CodecName; maxValues: number; out?: Float32Array },
): AnyClientUpdate {
  const { worker, samples, codec, maxValues } = params;
  if (SPARSE_CODECS.includes(codec))
    return { worker, samples, sparse: decodeSparseUpdate(payload, { codec, maxValues }) };
  const out = params.out ? { out: params.out } : {};
  return { worker, samples, tensors: decodeUpdate(payload, { codec, maxValues, ...out }) };
}
