// The reducer's state cached on disk, one snapshot per chain, view and reducer build, so a command replays only the
// blocks finalized since the last command that read the same chain.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isCanonical, syncState, type ChainClient } from './client.ts';
import { decodeSnapshot, encodeSnapshot } from './snapshot.ts';
import { initialState, type ProtocolState } from './state.ts';
import type { Hex32 } from './types.ts';

export interface CachedSyncParameters {
  /** The cache folder (e.g. ~/.cache/fedtune/chain); null reads the chain from `from` every time. */
  dir: string | null;
  /** The network the state follows, null for all. */
  only: Hex32 | null;
  /** The first block read by a fresh state. */
  from?: number;
  /** The last block to fold (default the finalized head). A cached state already past it is not used. */
  to?: number;
}

let fingerprint: string | undefined;

/**
 * What the cached states were derived by: a hash of this folder's code. A state the reducer of another build wrote
 * is never read back, so a changed rule cannot leave a stale verdict behind.
 */
export function reducerFingerprint(): string {
  if (fingerprint === undefined) {
    const here = dirname(fileURLToPath(import.meta.url));
    const hash = createHash('sha256');
    for (const name of readdirSync(here).sort()) {
      if (!/\.(ts|js)$/.test(name)) continue;
      hash.update(name).update(readFileSync(join(here, name)));
    }
    fingerprint = hash.digest('hex').slice(0, 16);
  }
  return fingerprint;
}

/** The snapshot file of one view of one chain. Two dev chains share a genesis; the block hash tells them apart. */
export function stateCacheFile(dir: string, genesisHash: string, only: Hex32 | null, from = 0): string {
  return join(dir, genesisHash, reducerFingerprint(), `${only ?? 'all'}-from-${from}.snapshot`);
}

/** The cached state if it is readable, of this view, not past `to` and its block still canonical; null otherwise. */
async function cached(
  client: ChainClient,
  file: string,
  only: Hex32 | null,
  to: number | undefined,
): Promise<ProtocolState | null> {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch {
    return null;
  }
  try {
    const { state, blockNumber, blockHash } = decodeSnapshot(bytes);
    if (state.only !== only || (to !== undefined && blockNumber > to)) return null;
    if (!(await isCanonical(client, blockNumber, blockHash))) {
      client.logger.debug(
        { file, block: blockNumber },
        'cached state is of another chain or fork; replaying',
      );
      return null;
    }
    return state;
  } catch (error) {
    client.logger.debug({ file, err: error }, 'cached state unreadable; replaying');
    return null;
  }
}

/** Written under a name of its own, then renamed: concurrent commands never read half a file. */
function save(file: string, state: ProtocolState, client: ChainClient): void {
  if (state.blockHash === null) return;
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(tmp, encodeSnapshot(state));
    renameSync(tmp, file);
  } catch (error) {
    // A cache that cannot be written only costs the next command a replay.
    client.logger.debug({ file, err: error }, 'could not cache the state');
    rmSync(tmp, { force: true });
  }
}

/**
 * The protocol state up to `to` (default the finalized head): resumed from the cached snapshot when it is still
 * canonical, folded from `from` otherwise, and cached again.
 */
export async function syncCached(client: ChainClient, params: CachedSyncParameters): Promise<ProtocolState> {
  const fresh = () => initialState({ only: params.only });
  if (params.dir === null) return syncState(client, { state: fresh(), from: params.from, to: params.to });
  const file = stateCacheFile(params.dir, client.genesisHash, params.only, params.from);
  const start = await cached(client, file, params.only, params.to);
  const state = await syncState(client, { state: start ?? fresh(), from: params.from, to: params.to });
  if (start === null || state.height > start.height) save(file, state, client);
  return state;
}
