// The explorer's error type: a stable code and a message that says what to do next (the shape of errors/).
import { CodedError } from '../errors/index.ts';

export class ExplorerError extends CodedError {}

/** Why a fetch failed, in the words that help: the socket's code (ECONNREFUSED, …), else the cause's message. */
export function reasonOf(error: unknown): string {
  const e = error as (Error & { cause?: { code?: string; message?: string } }) | null;
  return e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(error);
}
