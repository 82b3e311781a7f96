// The wire's one error type: a stable code (E_FRAME_MALFORMED, E_FRAME_TOO_LARGE, E_FIELD_TOO_LONG) and what to do next.
import { CodedError } from '../errors/index.ts';

export class WireError extends CodedError {}
