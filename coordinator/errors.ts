// The coordinator's error: a stable code, a message that says what to do, and the exit status the CLI uses.
export class CoordinatorError extends Error {
  readonly code: string;
  readonly exitCode: number;
  constructor(code: string, message: string, options: { exitCode?: number; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'CoordinatorError';
    this.code = code;
    this.exitCode = options.exitCode ?? 1;
  }
}

export const codeOf = (error: unknown): string => (error as { code?: string }).code ?? 'E_INTERNAL';
