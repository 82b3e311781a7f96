// The error type of the checkpoint store, server and downloader: a stable code and a message naming what failed.
export class CheckpointError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'CheckpointError';
    this.code = code;
  }
}
