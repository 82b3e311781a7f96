// The error type every fedtune command fails with: a stable code, a message that says what was expected.
export class FedtuneError extends Error {
  readonly code: string;
  /** Process exit status: 2 for bad arguments or input, 1 for everything else. */
  readonly exitCode: number;

  constructor(code: string, message: string, options: { exitCode?: number; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'FedtuneError';
    this.code = code;
    this.exitCode = options.exitCode ?? 1;
  }
}
