// The checkpoint a round's updates were made on: round r-1's checkpoint (and its strategy state), or for round 0 the
// base derived from public values (a seeded init, or the certified parent with seeded adapters).
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import {
  CHECKPOINT_FILE,
  downloadCheckpoint,
  httpSource,
  type CheckpointManifest,
} from '../checkpoints/index.ts';
import { disposeModel, modelFromSafetensors, type Model } from '../model/index.ts';
import type { RoundProposal } from '../pallet-bindings/index.ts';
import type { RoundContext } from './context.ts';
import { seededBase } from './derive.ts';
import type { RoundPublication } from './publication.ts';
import { VerifyFailure, type VerifyRoundParams } from './types.ts';
import { fetchBlob, MAX_UPDATE_BYTES } from './updates.ts';

export interface Base {
  model: Model;
  bytes: Uint8Array;
  state: Uint8Array | null;
}

async function checkpointFrom(
  id: string,
  sources: string[],
  params: VerifyRoundParams,
): Promise<{ bytes: Uint8Array; manifest: CheckpointManifest }> {
  const outDir = join(params.cacheDir, id.slice(2));
  const record = params.net.checkpoints[id as `0x${string}`];
  const { manifest } = await downloadCheckpoint({
    id,
    sources: [...(record ? [httpSource(record.uri)] : []), ...sources.map((s) => httpSource(s))],
    outDir,
    logger: params.logger,
  });
  return { bytes: new Uint8Array(await readFile(join(outDir, CHECKPOINT_FILE))), manifest };
}

export async function loadBase(
  params: VerifyRoundParams,
  p: RoundProposal,
  pub: RoundPublication,
  ctx: RoundContext,
): Promise<{ value: Base; detail: string }> {
  const coordinator = p.finalized[params.round]!.coordinator;
  const mismatch = (why: string): never => {
    throw new VerifyFailure('E_AGGREGATE_MISMATCH', why, coordinator);
  };
  if (params.round > 0) {
    const id = p.finalized[params.round - 1]!.checkpoint.id;
    if (pub.base !== id)
      mismatch(
        `the round's updates were made on ${pub.base}, not round ${params.round - 1}'s checkpoint ${id}`,
      );
    const { bytes, manifest } = await checkpointFrom(id, ctx.sources, params);
    let state: Uint8Array | null = null;
    if (manifest.state) {
      const fetched = await fetchBlob(ctx.sources, manifest.state, MAX_UPDATE_BYTES);
      if (!fetched.body)
        throw new VerifyFailure(
          'E_UPDATE_UNAVAILABLE',
          `no source serves the strategy state ${manifest.state} that checkpoint ${id} names: ${fetched.problems.join('; ') || 'no sources'}`,
          coordinator,
        );
      state = fetched.body;
    }
    // Whether the round started from this state is checked with the aggregate (the publication's stateBefore).
    return {
      value: { model: modelFromSafetensors(bytes, ctx.config), bytes, state },
      detail: `base ${id} (${bytes.length} bytes)${manifest.state ? `, strategy state ${manifest.state.slice(0, 10)}…` : ''}`,
    };
  }
  // Round 0: the base is derived from public values (a seeded init, or the parent with seeded adapters).
  let parent: { model: Model; id: string } | null = null;
  if (p.round.kind !== 'Pretrain') {
    const parentId = p.round.baseCheckpoint!;
    const { bytes } = await checkpointFrom(parentId, ctx.sources, params);
    const model = modelFromSafetensors(bytes);
    if (ctx.config.lora === undefined || model.config.lora !== undefined) {
      if (pub.base !== parentId)
        mismatch(`round 0 must start from the certified parent ${parentId}, not ${pub.base}`);
      return { value: { model, bytes, state: null }, detail: `base: the certified parent ${parentId}` };
    }
    parent = { model, id: parentId };
  }
  const seeded = seededBase({
    config: ctx.config,
    network: params.network,
    proposal: params.proposal,
    parent,
  });
  if (parent) disposeModel(parent.model);
  if (seeded.id !== pub.base) {
    disposeModel(seeded.model);
    mismatch(`round 0 must start from the seeded base ${seeded.id}, not ${pub.base}`);
  }
  return {
    value: { model: seeded.model, bytes: seeded.bytes, state: null },
    detail: `base ${seeded.id}, derived from the proposal's seed`,
  };
}
