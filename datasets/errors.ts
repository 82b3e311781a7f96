// The error every datasets/ function fails with: a stable `code` (E_DATASET_…, E_SHARD_…, E_TOKENIZER_…) and a message saying what was expected.
export class DatasetError extends Error {
  readonly code: string;
  /** Process exit status the CLI should use: 2 for bad input, 1 otherwise. */
  readonly exitCode: number;
  /** Machine-readable specifics (which shard, which record) for a caller to report onward. */
  readonly details?: Record<string, string | number>;

  constructor(
    code: string,
    message: string,
    options: { exitCode?: number; cause?: unknown; details?: Record<string, string | number> } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'DatasetError';
    this.code = code;
    this.exitCode = options.exitCode ?? 2;
    if (options.details) this.details = options.details;
  }
}
