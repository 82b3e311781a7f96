// The error type of model/: a stable code such as 'E_SAFETENSORS_TRUNCATED' and a message that says what was expected.
export class ModelError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'ModelError';
    this.code = code;
  }
}
