// The error type of pallet-bindings/: a stable code the CLI prints, an exit status (2 for bad input), details (errors/).
import { CodedError } from '../errors/index.ts';

export class PalletError extends CodedError {}
