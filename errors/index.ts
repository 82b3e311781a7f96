// errors/: the one shape of every fedtune error — a stable code, a reason that says what was wrong and what to do, an
// exit status and optional details. It imports nothing, so every folder may use it, devchain/ and merkle/ included.

export interface CodedErrorOptions {
  /** Process exit status when the error ends a command: 2 for bad arguments or input, 1 otherwise (the default). */
  exitCode?: number;
  cause?: unknown;
  /** Machine-readable specifics (which block, which shard) for a caller to report onward. */
  details?: Record<string, unknown>;
}

/** The plain form of a coded error, as `--json` output and logs carry it. */
export interface CodedErrorJson {
  name: string;
  code: string;
  reason: string;
  details: Record<string, unknown>;
}

/**
 * The base of every folder's error type (DatasetError, PalletError, …): `code` is stable (E_…), `message` (also
 * `reason`) is for people. Each folder keeps its own subclass, so `instanceof` still tells who failed.
 */
export class CodedError extends Error {
  readonly code: string;
  readonly exitCode: number;
  readonly details: Record<string, unknown>;

  constructor(code: string, message: string, options: CodedErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.exitCode = options.exitCode ?? 1;
    this.details = options.details ?? {};
  }

  /** What was wrong and what to do: the message, under the name the reducer's audit entries use. */
  get reason(): string {
    return this.message;
  }

  toJSON(): CodedErrorJson {
    return { name: this.name, code: this.code, reason: this.message, details: this.details };
  }
}

/** Whether a value has the coded shape: a CodedError, or any object with an E_… `code` (errors from other realms). */
export function isCoded(error: unknown): error is { code: string; message: string } {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^E_[A-Z0-9_]+$/.test(code);
}

/** The stable code of an error, or `fallback` when it has none. */
export function codeOf(error: unknown, fallback = 'E_INTERNAL'): string {
  return isCoded(error) ? error.code : fallback;
}
