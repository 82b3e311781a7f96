// The error type of the dev chain: a stable code and a message that says what to do (errors/, its one import of ours).
import { CodedError } from '../errors/index.ts';

export class DevnetError extends CodedError {}
