// The one path from a trained update to the bytes a worker uploads: the delta from the base, encoded with the task's
// codec, top-k error feedback included. The trainer (runner.ts) and a verifier's re-execution (reexecute.ts) both call
// it, so what a verifier recomputes is, by construction, what an honest trainer sends.
import { createTopKState, encodeUpdate, type CodecName, type TopKState } from '../aggregation/index.ts';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { writeFileAtomic } from '../checkpoints/index.ts';
import { readSafetensors, writeSafetensors, type NamedTensors } from '../model/index.ts';
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

/**
 * The residual rule's book: the residual left by a worker's acknowledged top-k upload to each recent round of each
 * proposal, in memory and in `dir` (so a restarted worker still follows the rule). A round-r task starts from what its
 * round r-1 upload left, or from zero when there is none (the worker skipped or failed round r-1): a function of which
 * rounds the worker contributed to, which a verifier reads from the chain.
 */
export class ResidualBook {
  private readonly byProposal = new Map<number, Map<number, TopKState>>();

  constructor(
    private readonly dir: string,
    private readonly logger?: Logger,
  ) {}

  private file(proposal: number, round: number): string {
    return join(this.dir, `${proposal}-${round}.safetensors`);
  }

  /** The residual a round-`round` task of the proposal starts from; undefined means zero. */
  async before(proposal: number, round: number): Promise<TopKState | undefined> {
    const kept = this.byProposal.get(proposal)?.get(round - 1);
    if (kept) return kept;
    try {
      const file = readSafetensors(new Uint8Array(await readFile(this.file(proposal, round - 1))));
      return { residual: new Map(file.tensors.map((t) => [t.name, t.data])) };
    } catch {
      return undefined; // none kept: the round starts from zero, as the rule says
    }
  }

  /** Keeps the residual an acknowledged upload to `round` left. */
  async keep(proposal: number, round: number, state: TopKState): Promise<void> {
    let byRound = this.byProposal.get(proposal);
    if (!byRound) this.byProposal.set(proposal, (byRound = new Map()));
    byRound.set(round, state);
    // A retried round r starts from round r-1's residual again; anything older is never needed.
    for (const r of [...byRound.keys()]) if (r < round - 1) byRound.delete(r);
    const tensors = [...state.residual].map(([name, data]) => ({ name, shape: [data.length], data }));
    try {
      await rm(this.file(proposal, round - 2), { force: true });
      await mkdir(this.dir, { recursive: true });
      await writeFileAtomic(this.dir, this.file(proposal, round), writeSafetensors(tensors));
    } catch (error) {
      this.logger?.warn(
        { err: error },
        'saving the top-k residual failed; after a restart the next round would start from zero',
      );
    }
  }
}
