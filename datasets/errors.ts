// The error every datasets/ function fails with: a stable `code` (E_DATASET_…, E_SHARD_…, E_TOKENIZER_…) and a message saying what was expected.
import { CodedError, type CodedErrorOptions } from '../errors/index.ts';

export class DatasetError extends CodedError {
  /** Bad input is the usual cause here: the exit status is 2 unless told otherwise. */
  constructor(code: string, message: string, options: CodedErrorOptions = {}) {
    super(code, message, { ...options, exitCode: options.exitCode ?? 2 });
  }
}
