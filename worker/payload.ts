// The one path from a trained update to the bytes a worker uploads: the delta from the base, encoded with the task's
// codec, top-k error feedback included. The trainer (runner.ts) and a verifier's re-execution (reexecute.ts) both call
// it, so what a verifier recomputes is, by construction, what an honest trainer sends.
import { createTopKState, encodeUpdate, type CodecName, type TopKState } from '../aggregation/index.ts';
import { readSafetensors, type NamedTensors } from '../model/index.ts';
import { WorkerError } from './connection.ts';
import type { ParsedTask } from './task.ts';

/** Codecs that keep an error-feedback residual between a worker's rounds. */
export const isTopK = (codec: string): boolean => codec === 'topk' || codec === 'topk-int8';

/** A deep copy: the encoder adds into and subtracts from the residual in place. */
export function cloneTopKState(state: TopKState | undefined): TopKState {
  const copy = createTopKState();
  if (state) for (const [name, r] of state.residual) copy.residual.set(name, r.slice());
  return copy;
}

/** Full-training updates are deltas already; LoRA updates are the adapters' values, sent as a delta from the base. */
export function toDelta(update: NamedTensors, kind: 'delta' | 'values', base: Uint8Array): NamedTensors {
  if (kind === 'delta') return update;
  const baseTensors = new Map(readSafetensors(base).tensors.map((t) => [t.name, t.data]));
  return update.map((t) => {
    const b = baseTensors.get(t.name);
    if (!b || b.length !== t.data.length)
      throw new WorkerError(
        'E_TASK_INVALID',
        `the base checkpoint has no tensor ${t.name} of the right size`,
      );
    const data = new Float32Array(t.data.length);
    for (let i = 0; i < data.length; i++) data[i] = t.data[i]! - b[i]!;
    return { name: t.name, shape: t.shape, data };
  });
}

export interface UpdatePayload {
  /** The dense update as float32 deltas from the base (what the codec encoded). */
  delta: NamedTensors;
  /** The encoded bytes, as uploaded. */
  payload: Uint8Array;
  /** Top-k codecs: the residual after this payload (a new object; the prior state is never changed). Else undefined. */
  state?: TopKState;
  /** float32 bytes of the dense update. */
  denseBytes: number;
}

/**
 * Turns a trained update into the payload the task's codec asks for. For top-k codecs `priorState` is the residual the
 * worker carries into this round (see docs/model.md "Reproducible training" for which one that is); it is copied, not
 * advanced: the caller keeps the returned `state` only once the upload is acknowledged.
 */
export function updatePayload(params: {
  parsed: Pick<ParsedTask, 'codec'>;
  update: NamedTensors;
  updateKind: 'delta' | 'values';
  baseCheckpoint: Uint8Array;
  priorState?: TopKState;
}): UpdatePayload {
  const { parsed } = params;
  const delta = toDelta(params.update, params.updateKind, params.baseCheckpoint);
  const state = isTopK(parsed.codec.codec) ? cloneTopKState(params.priorState) : undefined;
  const payload = encodeUpdate(delta, {
    ...parsed.codec,
    codec: parsed.codec.codec as CodecName,
    state,
  });
  const denseBytes = delta.reduce((n, t) => n + t.data.byteLength, 0);
  return { delta, payload, state, denseBytes };
}
