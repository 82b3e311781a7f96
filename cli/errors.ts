// The error type every fedtune command fails with: a stable code, a message that says what was expected (errors/).
import { CodedError } from '../errors/index.ts';

export class FedtuneError extends CodedError {}
