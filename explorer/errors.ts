// The explorer's error type: a stable code and a message that says what to do next.
export class ExplorerError extends Error {
  readonly code: string;
  /** Process exit status when it ends a command: 2 for bad arguments, 1 otherwise. */
  readonly exitCode: number;

  constructor(code: string, message: string, options: { exitCode?: number; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'ExplorerError';
    this.code = code;
    this.exitCode = options.exitCode ?? 1;
  }
}
