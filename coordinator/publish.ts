// A round's publication: every accepted update's payload and the strategy states as blobs in the store, and the round's
// record (leaf order, signed fields) at rounds/<proposal>/<round>.json, so anyone can repeat the round. Written before
// the round is committed; update payloads are pruned by the --keep-updates retention.
import { mkdir, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic, type CheckpointStore } from '../checkpoints/index.ts';
import { toHex } from '../pallet-bindings/index.ts';
import {
  leafOrder,
  PUBLICATION_VERSION,
  type PublishedUpdateRecord,
  type RoundPublication,
} from '../verify/index.ts';
import type { UpdateRecord } from './records.ts';

/** How many of a proposal's latest rounds keep their update payloads ('all': never pruned). */
export type KeepUpdates = number | 'all';

const recordPath = (store: CheckpointStore, proposal: number, round: number) =>
  join(store.dir, 'rounds', String(proposal), `${round}.json`);

export async function publishRound(
  store: CheckpointStore,
  params: {
    network: string;
    coordinator: string;
    proposal: number;
    round: number;
    base: string;
    codec: string;
    stateBefore: Uint8Array;
    stateAfter: Uint8Array;
    updates: readonly UpdateRecord[];
  },
): Promise<RoundPublication> {
  for (const u of params.updates) await store.putBlob(u.payload);
  const stateBefore = await store.putBlob(params.stateBefore);
  await store.putBlob(params.stateAfter);
  const publication: RoundPublication = {
    version: PUBLICATION_VERSION,
    network: params.network,
    proposal: params.proposal,
    round: params.round,
    coordinator: params.coordinator,
    base: params.base,
    codec: params.codec,
    stateBefore,
    updates: publishedRecords(params.updates),
  };
  const dir = join(store.dir, 'rounds', String(params.proposal));
  await mkdir(dir, { recursive: true });
  await writeFileAtomic(
    join(store.dir, 'tmp'),
    recordPath(store, params.proposal, params.round),
    new TextEncoder().encode(JSON.stringify(publication)),
  );
  return publication;
}

/** The round's publication as served, or null when this store has none. */
export async function readPublication(
  store: CheckpointStore,
  proposal: number,
  round: number,
): Promise<Uint8Array | null> {
  try {
    return new Uint8Array(await readFile(recordPath(store, proposal, round)));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/**
 * Drops the update payloads of a proposal's rounds older than the newest `keep` (round records and states stay: they
 * are small, and a verifier told "pruned" by a 404 knows what it is missing). Returns how many payloads left the disk.
 */
export async function pruneUpdates(
  store: CheckpointStore,
  proposal: number,
  latestRound: number,
  keep: KeepUpdates,
): Promise<number> {
  if (keep === 'all') return 0;
  const dir = join(store.dir, 'rounds', String(proposal));
  const names = await readdir(dir).catch(() => [] as string[]);
  const keepHashes = new Set<string>();
  const dropHashes = new Set<string>();
  for (const name of names) {
    const m = /^(\d+)\.json$/.exec(name);
    if (!m) continue;
    const round = Number(m[1]);
    const bytes = await readPublication(store, proposal, round);
    if (!bytes) continue;
    const pub = JSON.parse(new TextDecoder().decode(bytes)) as RoundPublication;
    const into = round > latestRound - keep ? keepHashes : dropHashes;
    for (const u of pub.updates) into.add(u.payloadSha256);
  }
  let dropped = 0;
  for (const hash of dropHashes) {
    if (keepHashes.has(hash)) continue;
    await store.deleteBlob(hash);
    dropped++;
  }
  return dropped;
}

/** Journaled updates as a round record lists them: in leaf (account) order, with the fields each worker signed. */
export function publishedRecords(updates: readonly UpdateRecord[]): PublishedUpdateRecord[] {
  return leafOrder(updates).map((u) => ({
    account: u.account,
    taskId: u.taskId,
    samples: u.samples,
    shards: u.shards,
    trainLoss: u.trainLoss,
    payloadSha256: toHex(u.payloadSha256),
    payloadBytes: u.payload.length,
    signature: u.signature ? toHex(u.signature) : '0x',
  }));
}
