// The coordinator's error: a stable code, a message that says what to do, and the exit status the CLI uses (errors/).
import { CodedError } from '../errors/index.ts';

export { codeOf } from '../errors/index.ts';

export class CoordinatorError extends CodedError {}
