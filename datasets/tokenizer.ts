// The byte-level tokenizer every fedtune model and dataset share: ids 0..255 are UTF-8 bytes, 256..259 are special tokens.
import { DatasetError } from './errors.ts';

export const BOS = 256;
export const EOS = 257;
export const PAD = 258;
export const CLS = 259;
export const VOCAB_SIZE = 260;
/** Named in manifests and on chain so a model and a dataset can be checked to share one vocabulary. */
export const TOKENIZER_ID = 'fedtune-byte-v1';

const encoder = new TextEncoder();
// Not fatal: a model's sampled bytes need not be valid UTF-8, and decoding them must still give text.
const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

export interface EncodeOptions {
  /** Prepend BOS. */
  bos?: boolean;
  /** Append EOS. */
  eos?: boolean;
}

/** UTF-8 bytes of `text` as token ids, optionally framed by BOS/EOS. */
export function encode(text: string, { bos = false, eos = false }: EncodeOptions = {}): Int32Array {
  const bytes = encoder.encode(text);
  const start = bos ? 1 : 0;
  const ids = new Int32Array(bytes.length + start + (eos ? 1 : 0));
  if (bos) ids[0] = BOS;
  ids.set(bytes, start);
  if (eos) ids[ids.length - 1] = EOS;
  return ids;
}

/** Text of the byte ids in `ids`; special tokens are skipped, an id outside the vocabulary is an error. */
export function decode(ids: ArrayLike<number>): string {
  const bytes = new Uint8Array(ids.length);
  let n = 0;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (!Number.isInteger(id) || id < 0 || id >= VOCAB_SIZE) {
      throw new DatasetError(
        'E_TOKENIZER_BAD_ID',
        `token ${i} is ${id}; expected an integer in 0..${VOCAB_SIZE - 1}`,
      );
    }
    if (id < 256) bytes[n++] = id;
  }
  return decoder.decode(bytes.subarray(0, n));
}
