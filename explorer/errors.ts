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

/** Why a fetch failed, in the words that help: the socket's code (ECONNREFUSED, …), else the cause's message. */
export function reasonOf(error: unknown): string {
  const e = error as (Error & { cause?: { code?: string; message?: string } }) | null;
  return e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(error);
}
