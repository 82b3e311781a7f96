// The one error type aggregation/ throws: a stable string code plus a message saying what was wrong and what was expected.
import { CodedError } from '../errors/index.ts';

export type AggregationErrorCode =
  | 'E_STRATEGY_SPEC'
  | 'E_WEIGHTS'
  | 'E_ROUND'
  | 'E_NO_UPDATES'
  | 'E_NOT_ENOUGH_UPDATES'
  | 'E_UPDATE_SHAPE'
  | 'E_UPDATE_NOT_FINITE'
  | 'E_UPDATE_NORM'
  | 'E_UPDATE_SAMPLES'
  | 'E_UPDATE_WORKER'
  | 'E_DUPLICATE_UPDATE'
  | 'E_CODEC_SPEC'
  | 'E_CODEC_UNKNOWN'
  | 'E_CODEC_MISMATCH'
  | 'E_CODEC_MALFORMED'
  | 'E_CODEC_INPUT'
  | 'E_ACCOUNTANT'
  | 'E_STATE';

export class AggregationError extends CodedError {
  declare readonly code: AggregationErrorCode;
  constructor(code: AggregationErrorCode, message: string) {
    super(code, message);
  }
}

export function fail(code: AggregationErrorCode, message: string): never {
  throw new AggregationError(code, message);
}
