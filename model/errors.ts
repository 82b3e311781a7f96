// The error type of model/: a stable code such as 'E_SAFETENSORS_TRUNCATED' and a message that says what was expected.
import { CodedError } from '../errors/index.ts';

export class ModelError extends CodedError {}
