// The wire's one error type: a stable code (E_FRAME_MALFORMED, E_FRAME_TOO_LARGE, E_FIELD_TOO_LONG) and what to do next.
export class WireError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'WireError';
    this.code = code;
  }
}
