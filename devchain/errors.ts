// The error type of the dev chain: a stable code and a message that says what to do.
export class DevnetError extends Error {
  readonly code: string;
  readonly exitCode: number;

  constructor(code: string, message: string, options: { cause?: unknown; exitCode?: number } = {}) {
    super(message, { cause: options.cause });
    this.name = 'DevnetError';
    this.code = code;
    this.exitCode = options.exitCode ?? 1;
  }
}
