// The model a round starts from: round 0 is a seeded init (pre-training) or the certified parent with fresh LoRA
// adapters (fine-tuning); round r is round r-1's checkpoint. Every base is in the store, so workers can fetch it.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { downloadCheckpoint, httpSource, type CheckpointStore } from '../checkpoints/index.ts';
import { disposeModel, modelFromSafetensors, sameTrunk, type Model } from '../model/index.ts';
import type { NetworkState } from '../pallet-bindings/index.ts';
import { CoordinatorError } from './errors.ts';
import { seededBase } from '../verify/index.ts';
import type { ProposalContext } from './prepare.ts';

export interface BaseDependencies {
  store: CheckpointStore;
  network: string;
  /** The network's state now (checkpoint records for downloads). */
  net(): NetworkState | undefined;
  /** Where checkpoints this coordinator did not make are downloaded to. */
  downloadDir: string;
  logger: Logger;
}

/** A checkpoint's bytes from the store, or downloaded from its on-chain URI, verified, and stored. */
export async function checkpointBytes(id: string, deps: BaseDependencies): Promise<Uint8Array> {
  if (await deps.store.has(id)) return deps.store.readCheckpoint(id);
  const record = deps.net()?.checkpoints[id as `0x${string}`];
  if (!record) throw new CoordinatorError('E_UNKNOWN_CHECKPOINT', `checkpoint ${id} is not on chain`);
  const { manifest, path } = await downloadCheckpoint({
    id,
    sources: [httpSource(record.uri)],
    outDir: join(deps.downloadDir, id.slice(2)),
    logger: deps.logger,
  });
  const bytes = new Uint8Array(await readFile(path));
  const { model, parent, proposal, round, chunkSize } = manifest;
  const put = await deps.store.put(bytes, { model, parent, proposal, round, chunkSize });
  if (put.id !== id) throw new CoordinatorError('E_CHECKPOINT_MISMATCH', `re-stored ${id} as ${put.id}`);
  return bytes;
}

/** Drops a proposal's model and strategy: the next round rebuilds them from the store and the journal. */
export function resetContext(ctx: ProposalContext): void {
  if (ctx.current) disposeModel(ctx.current.model);
  ctx.current = null;
  ctx.strategy?.dispose();
  ctx.strategy = null;
  ctx.maxValues = null;
}

/** The model round r starts from, stored so that workers can fetch it by id; it becomes the context's current model. */
export async function baseModel(
  ctx: ProposalContext,
  r: number,
  deps: BaseDependencies,
): Promise<{ id: string; model: Model }> {
  if (ctx.current && ctx.current.round === r) return ctx.current;
  const p = ctx.proposal;
  // A round-0 base that is not on chain itself (fresh weights, or a parent with new adapters) is stored for workers.
  const storeSeeded = async (parent: { model: Model; id: string } | null) => {
    const seeded = seededBase({ config: ctx.config, network: deps.network, proposal: p.id, parent });
    const put = await deps.store.put(seeded.bytes, seeded.fields);
    if (put.id !== seeded.id)
      throw new CoordinatorError(
        'E_CHECKPOINT_MISMATCH',
        `stored the seeded base as ${put.id}, derived ${seeded.id}`,
      );
    return seeded;
  };
  let model: Model;
  let id: string;
  if (r > 0) {
    id = p.finalized[r - 1]!.checkpoint.id;
    model = modelFromSafetensors(await checkpointBytes(id, deps));
  } else if (p.round.kind === 'Pretrain') {
    ({ model, id } = await storeSeeded(null));
  } else {
    const parentId = p.round.baseCheckpoint!;
    const parent = modelFromSafetensors(await checkpointBytes(parentId, deps));
    const { lora: _l, ...parentArch } = parent.config;
    const { lora, ...wantArch } = ctx.config;
    // A classifier fine-tune of a language model: the same trunk, a seeded head, then seeded adapters.
    const head = parent.config.kind === 'lm' && ctx.config.kind === 'classifier';
    if (
      head
        ? !(lora && parent.config.lora === undefined && sameTrunk(parent.config, ctx.config))
        : JSON.stringify(sortKeys(parentArch)) !== JSON.stringify(sortKeys(wantArch))
    ) {
      disposeModel(parent);
      throw new CoordinatorError(
        'E_MODEL_MISMATCH',
        head
          ? `a classifier fine-tune of language model ${parentId} needs its architecture and LoRA adapters`
          : `the proposal's model config does not match base checkpoint ${parentId}'s architecture`,
      );
    }
    if (lora && parent.config.lora === undefined) {
      try {
        ({ model, id } = await storeSeeded({ model: parent, id: parentId }));
      } finally {
        disposeModel(parent);
      }
    } else {
      model = parent;
      id = parentId;
    }
  }
  resetContext(ctx);
  ctx.current = { id, model, round: r };
  return ctx.current;
}

function sortKeys(value: object): object {
  return Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : 1)));
}
