// Length limits on every decoded header field, checked right after protobuf decoding and before anything parses a field
// (an SS58 decoder, a JSON parser): a hostile peer cannot make the other side spend more than linear time on a frame.
import { WireError } from './errors.ts';

/** Longest account string: a 0x-hex public key (66 characters) is the longest form an account takes on the wire. */
export const MAX_ACCOUNT_CHARS = 66;
/** Default for any other string field (ids, codes, codec names, hashes in hex). */
export const MAX_STRING_CHARS = 256;
/** Default for any bytes field (nonces, hashes, signatures are 32 to 65 bytes). */
export const MAX_BYTES_FIELD = 128;
/** Default for a repeated field. */
export const MAX_REPEATED = 65_536;

/** Longest `message` of an Error or TaskFailed frame: senders cut theirs to it. */
export const MAX_MESSAGE_CHARS = 4096;

/** Per field name, where the default does not fit. JSON configs are bounded by the header limit alone. */
const STRING_LIMITS: Record<string, number> = {
  account: MAX_ACCOUNT_CHARS,
  coordinator: MAX_ACCOUNT_CHARS,
  modelJson: Infinity,
  hyperparamsJson: Infinity,
  codecJson: Infinity,
  message: MAX_MESSAGE_CHARS,
  url: 2048,
  endpoint: 2048,
};
/** A Merkle proof has one sibling per tree level: 64 levels hold 2^64 leaves. */
const REPEATED_LIMITS: Record<string, number> = { proof: 64 };

/** Throws E_FIELD_TOO_LONG naming the first field of a decoded header over its limit. */
export function checkFieldLimits(value: unknown, path = ''): void {
  if (value === null || typeof value !== 'object') return;
  for (const [key, field] of Object.entries(value as Record<string, unknown>)) {
    const where = path === '' ? key : `${path}.${key}`;
    if (typeof field === 'string') {
      const limit = STRING_LIMITS[key] ?? MAX_STRING_CHARS;
      if (field.length > limit)
        throw new WireError('E_FIELD_TOO_LONG', `${where} is ${field.length} characters; at most ${limit}`);
    } else if (field instanceof Uint8Array) {
      if (field.length > MAX_BYTES_FIELD)
        throw new WireError(
          'E_FIELD_TOO_LONG',
          `${where} is ${field.length} bytes; at most ${MAX_BYTES_FIELD}`,
        );
    } else if (Array.isArray(field)) {
      const limit = REPEATED_LIMITS[key] ?? MAX_REPEATED;
      if (field.length > limit)
        throw new WireError('E_FIELD_TOO_LONG', `${where} has ${field.length} entries; at most ${limit}`);
      for (const item of field) {
        if (item instanceof Uint8Array && item.length > MAX_BYTES_FIELD)
          throw new WireError(
            'E_FIELD_TOO_LONG',
            `an entry of ${where} is ${item.length} bytes; at most ${MAX_BYTES_FIELD}`,
          );
        checkFieldLimits(item, where);
      }
    } else checkFieldLimits(field, where);
  }
}
