// The chain client over @polkadot/api: connect, build protocol calls (alone or with transfers, atomically), read
// blocks, sync the reducer. submit.ts puts the calls on chain.
import './quiet-api.ts';
import { ApiPromise, WsProvider } from '@polkadot/api';
import type { EventRecord, Extrinsic } from '@polkadot/types/interfaces';
import type { AnyTuple, CallBase } from '@polkadot/types/types';

type Call = CallBase<AnyTuple>;
import type { Logger } from 'pino';
import { u8aToHex } from '@polkadot/util';
import { toAccount } from './scale-types.ts';
import { PalletError } from './errors.ts';
import { markOutcomes, UTILITY_EVENTS, type UtilityEvent } from './outcomes.ts';
import { reduceBlock } from './reducer.ts';
import { decodeSnapshot } from './snapshot.ts';
import { initialState, type ChainBlock, type ChainCall, type ProtocolState } from './state.ts';

export interface ChainClient {
  readonly api: ApiPromise;
  readonly url: string;
  readonly genesisHash: string;
  readonly logger: Logger;
  close(): Promise<void>;
}

export interface ConnectParameters {
  url: string;
  logger: Logger;
  /** Attempts before giving up (default 5); the wait doubles from `backoffMs` (default 250 ms) each time. */
  attempts?: number;
  backoffMs?: number;
  /** How long one attempt may take (default 10 s). */
  timeoutMs?: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What a chain says it is: enough to tell whether an API built for it earlier still decodes it. */
interface ChainIdentity {
  genesisHash: string;
  specName: string;
  specVersion: number;
}

/**
 * One WebSocket open, or the reason it failed, and what the chain says it is (null when it does not say so within
 * `identityMs`: the API built next reports what is wrong). The probe does not reconnect by itself.
 */
async function probe(url: string, timeoutMs: number, identityMs = 2_000): Promise<ChainIdentity | null> {
  const provider = new WsProvider(url, false);
  const timers: NodeJS.Timeout[] = [];
  const within = <T>(
    ms: number,
    what: string,
    work: (resolve: (v: T) => void, reject: (e: unknown) => void) => void,
  ) =>
    new Promise<T>((resolve, reject) => {
      timers.push(setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms));
      work(resolve, reject);
    });
  try {
    await within<void>(timeoutMs, 'answer', (resolve, reject) => {
      provider.on('connected', () => resolve());
      provider.on('error', (error: unknown) =>
        reject(error instanceof Error ? error : new Error('connection refused')),
      );
      provider.connect().catch(reject);
    });
    return await within<ChainIdentity>(identityMs, 'genesis hash and runtime version', (resolve, reject) => {
      Promise.all([
        provider.send<string>('chain_getBlockHash', [0]),
        provider.send<{ specName: string; specVersion: number }>('state_getRuntimeVersion', []),
      ]).then(
        ([genesisHash, version]) =>
          resolve({ genesisHash, specName: version.specName, specVersion: version.specVersion }),
        reject,
      );
    }).catch(() => null);
  } finally {
    timers.forEach(clearTimeout);
    await provider.disconnect().catch(() => undefined);
  }
}

/**
 * The first API this process built for each of the last few chain URLs, kept after it disconnects. A later connection
 * to that URL that finds the same genesis hash and runtime version is built from it (@polkadot/api's `source`: the same
 * registry and metadata, a connection of its own) and decodes no metadata: about 0.3–0.5 CPU-s less a connection, for a
 * process that connects to one chain many times (the demo's in-process commands, a test's clients). A runtime upgrade
 * while such a connection is open is not followed, as it is by the first; a later connection sees the new version and
 * decodes afresh.
 */
const sources = new Map<string, ApiPromise>();
const KEPT_SOURCES = 4;

function sourceFor(url: string, chain: ChainIdentity | null): ApiPromise | undefined {
  const source = sources.get(url);
  if (
    chain !== null &&
    source?.genesisHash.toHex() === chain.genesisHash &&
    source.runtimeVersion.specName.toString() === chain.specName &&
    source.runtimeVersion.specVersion.toNumber() === chain.specVersion
  )
    return source;
  return undefined;
}

/** Keeps `api` as the URL's source, the newest; the oldest goes once more than KEPT_SOURCES are kept. */
function keepSource(url: string, api: ApiPromise): void {
  sources.delete(url);
  sources.set(url, api);
  if (sources.size > KEPT_SOURCES) sources.delete(sources.keys().next().value!);
}

/** Connects with retry and exponential backoff; E_CHAIN_UNREACHABLE when nothing answers at `url`. */
export async function connect({
  url,
  logger,
  attempts = 5,
  backoffMs = 250,
  timeoutMs = 10_000,
}: ConnectParameters): Promise<ChainClient> {
  if (!/^wss?:\/\//.test(url)) {
    throw new PalletError('E_BAD_CHAIN_URL', `chain URL must start with ws:// or wss://, got ${url}`, {
      exitCode: 2,
    });
  }
  let lastError: unknown;
  let chain: ChainIdentity | null | undefined;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      chain = await probe(url, timeoutMs);
      break;
    } catch (error) {
      lastError = error;
      logger.debug({ url, attempt, attempts }, 'chain not reachable yet');
      if (attempt < attempts) await sleep(backoffMs * 2 ** (attempt - 1));
    }
  }
  if (chain === undefined) {
    throw new PalletError(
      'E_CHAIN_UNREACHABLE',
      `no Substrate node answers at ${url} after ${attempts} attempts (start one with \`fedtune devnet\`, or pass --chain URL)`,
      { cause: lastError },
    );
  }
  // Reachable: the long-lived connection reconnects by itself if the node restarts (a clone's provider too: it is the
  // source's WsProvider cloned, with the default retry).
  const source = sourceFor(url, chain);
  const provider = source ? undefined : new WsProvider(url, 2_500);
  let api: ApiPromise | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    api = new ApiPromise(
      source ? { source, noInitWarn: true } : { provider, noInitWarn: true, throwOnConnect: true },
    );
    await Promise.race([
      api.isReadyOrError,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('metadata did not arrive in time')), timeoutMs * 3);
      }),
    ]);
  } catch (cause) {
    await (api ?? provider)?.disconnect().catch(() => undefined);
    throw new PalletError('E_CHAIN_UNREACHABLE', `connected to ${url} but the API did not initialise`, {
      cause,
    });
  } finally {
    clearTimeout(timer);
  }
  if (!source) keepSource(url, api);
  const genesisHash = api.genesisHash.toHex();
  logger.debug(
    {
      url,
      genesisHash,
      runtime: api.runtimeVersion.specName.toString(),
      metadataReused: source !== undefined,
    },
    'connected to chain',
  );
  return {
    api,
    url,
    genesisHash,
    logger,
    close: async () => {
      await api.disconnect().catch(() => undefined);
    },
  };
}

// ---- building and submitting ----------------------------------------------------------------------

export interface Transfer {
  dest: string;
  /** Planck, as decimal digits or a bigint. */
  value: string | bigint;
}

/** The three call constructors the protocol uses; both `api.tx` and metadata-decorated `tx` objects have them. */
export interface CallBuilders<C> {
  /** The remark as 0x-hex: a Uint8Array given to a `Bytes` argument is read as already length-prefixed. */
  system: { remarkWithEvent(remark: string): C };
  utility: { batchAll(calls: C[]): C };
  balances: { transferKeepAlive(dest: string, value: bigint): C };
}

/**
 * One remark alone becomes `system.remarkWithEvent`; several, or any with transfers, become one
 * `utility.batchAll` of the remarks followed by `balances.transferKeepAlive` calls — all land or none.
 */
export function buildCall<C>(tx: CallBuilders<C>, payloads: Uint8Array[], transfers: Transfer[] = []): C {
  if (payloads.length === 0) throw new PalletError('E_BAD_CALL', 'nothing to submit', { exitCode: 2 });
  const remarks = payloads.map((p) => tx.system.remarkWithEvent(u8aToHex(p)));
  if (remarks.length === 1 && transfers.length === 0) return remarks[0]!;
  return tx.utility.batchAll([
    ...remarks,
    ...transfers.map((t) => tx.balances.transferKeepAlive(toAccount(t.dest), BigInt(t.value))),
  ]);
}

// ---- reading blocks -------------------------------------------------------------------------------

const REMARKS = new Set(['system.remark', 'system.remarkWithEvent']);
const BATCHES: Record<string, 'batch' | 'batchAll' | 'forceBatch'> = {
  'utility.batch': 'batch',
  'utility.batchAll': 'batchAll',
  'utility.forceBatch': 'forceBatch',
};
const TRANSFERS = new Set(['balances.transferKeepAlive', 'balances.transferAllowDeath', 'balances.transfer']);

/** The call tree as the reducer sees it (outcomes not yet known). */
export function callTree(call: Call): ChainCall {
  const name = `${call.section}.${call.method}`;
  if (REMARKS.has(name)) return { kind: 'remark', data: call.args[0]!.toU8a(true), ok: false };
  const mode = BATCHES[name];
  if (mode !== undefined) {
    return { kind: 'batch', mode, ok: false, calls: (call.args[0] as unknown as Call[]).map(callTree) };
  }
  if (TRANSFERS.has(name)) {
    // MultiAddress::Id encodes as 0x00 + 32 bytes; a bare AccountId (older runtimes) as 32 bytes.
    const dest = call.args[0]!.toU8a();
    const raw = dest.length === 33 && dest[0] === 0 ? dest.subarray(1) : dest.length === 32 ? dest : null;
    if (raw !== null)
      return { kind: 'transfer', dest: toAccount(raw), value: call.args[1]!.toString(), ok: false };
  }
  return { kind: 'other', name, ok: false };
}

/** A finalized block and its events as the reducer's plain input. */
export async function fetchBlock(client: ChainClient, hash: string): Promise<ChainBlock> {
  const { api, logger } = client;
  const signed = await api.rpc.chain.getBlock(hash);
  // A block of inherents only (the dev chain's empty blocks on an interval, most blocks of a quiet chain) carries
  // nothing the reducer reads, which skips unsigned extrinsics: its events are not fetched. Inherents cannot fail
  // (the block would be invalid), hence ok.
  if (!signed.block.extrinsics.some((x) => x.isSigned)) {
    const { header, extrinsics } = signed.block;
    return {
      number: header.number.toNumber(),
      hash,
      parentHash: header.parentHash.toHex(),
      extrinsics: extrinsics.map((x, index) => ({
        index,
        signer: null,
        ok: true,
        call: { kind: 'other', name: `${x.method.section}.${x.method.method}`, ok: true },
      })),
    };
  }
  const apiAt = await api.at(hash);
  const events = (await apiAt.query.system.events()) as unknown as EventRecord[];
  const byExtrinsic = new Map<number, EventRecord[]>();
  for (const record of events) {
    if (!record.phase.isApplyExtrinsic) continue;
    const i = record.phase.asApplyExtrinsic.toNumber();
    byExtrinsic.set(i, [...(byExtrinsic.get(i) ?? []), record]);
  }
  const { block } = signed;
  const number = block.header.number.toNumber();
  return {
    number,
    hash,
    parentHash: block.header.parentHash.toHex(),
    extrinsics: block.extrinsics.map((extrinsic: Extrinsic, index) => {
      const records = byExtrinsic.get(index) ?? [];
      const ok = records.some(
        ({ event }) => event.section === 'system' && event.method === 'ExtrinsicSuccess',
      );
      const utility = records
        .filter(
          ({ event }) => event.section === 'utility' && UTILITY_EVENTS.includes(event.method as UtilityEvent),
        )
        .map(({ event }) => event.method as UtilityEvent);
      const marked = markOutcomes(callTree(extrinsic.method), ok, utility);
      if (!marked.consistent) {
        logger.warn(
          { block: number, extrinsic: index },
          'utility events do not fit the call tree; its calls do not count',
        );
      }
      return {
        index,
        signer: extrinsic.isSigned ? toAccount(extrinsic.signer.toU8a().subarray(-32)) : null,
        ok,
        call: marked.call,
      };
    }),
  };
}

// ---- the derived state ----------------------------------------------------------------------------

export interface SyncParameters {
  /** Where to start: a state (from a snapshot, or the last sync); default a fresh state. */
  state?: ProtocolState;
  /** The last block to fold; default the current finalized head. */
  to?: number;
  /** For a fresh state on a long chain: the first block to read (e.g. the block the network was created in). */
  from?: number;
  /** Called after each block is folded in. */
  onBlock?: (state: ProtocolState, block: ChainBlock) => void;
  /** Blocks fetched at once (default 8). */
  concurrency?: number;
}

/** The finalized head's number. */
export async function finalizedHead(client: ChainClient): Promise<{ number: number; hash: string }> {
  const hash = await client.api.rpc.chain.getFinalizedHead();
  const header = await client.api.rpc.chain.getHeader(hash);
  return { number: header.number.toNumber(), hash: hash.toHex() };
}

/**
 * Folds every finalized block after the state's height up to `to`. A state whose block is no longer
 * canonical is an error (E_STATE_NOT_CANONICAL); use resumeFromSnapshot to fall back to a replay.
 */
export async function syncState(client: ChainClient, params: SyncParameters = {}): Promise<ProtocolState> {
  let state = params.state ?? initialState();
  const to = params.to ?? (await finalizedHead(client)).number;
  if (state.blockHash !== null && !(await isCanonical(client, state.height, state.blockHash))) {
    throw new PalletError(
      'E_STATE_NOT_CANONICAL',
      `block ${state.height} ${state.blockHash} is no longer canonical`,
    );
  }
  const concurrency = params.concurrency ?? 8;
  let next = Math.max(state.height + 1, params.from ?? 0);
  while (next <= to) {
    const numbers = Array.from({ length: Math.min(concurrency, to - next + 1) }, (_, i) => next + i);
    const blocks = await Promise.all(
      numbers.map(async (n) => fetchBlock(client, (await client.api.rpc.chain.getBlockHash(n)).toHex())),
    );
    for (const block of blocks) {
      if (
        state.blockHash !== null &&
        block.number === state.height + 1 &&
        block.parentHash !== state.blockHash
      ) {
        throw new PalletError(
          'E_STATE_NOT_CANONICAL',
          `block ${block.number} does not follow ${state.blockHash}`,
        );
      }
      state = reduceBlock(state, block);
      params.onBlock?.(state, block);
    }
    next += numbers.length;
  }
  return state;
}

export async function isCanonical(client: ChainClient, number: number, hash: string): Promise<boolean> {
  const canonical = await client.api.rpc.chain.getBlockHash(number);
  return canonical.toHex() === hash;
}

/**
 * The state a snapshot holds, if its block is still canonical on this chain; null (and a warning) when the
 * snapshot is unreadable or its block was replaced — the caller then replays.
 */
export async function resumeFromSnapshot(
  client: ChainClient,
  bytes: Uint8Array,
): Promise<ProtocolState | null> {
  let snapshot;
  try {
    snapshot = decodeSnapshot(bytes);
  } catch (error) {
    client.logger.warn({ code: (error as PalletError).code }, 'snapshot unreadable; replaying instead');
    return null;
  }
  if (!(await isCanonical(client, snapshot.blockNumber, snapshot.blockHash))) {
    client.logger.warn(
      { block: snapshot.blockNumber, hash: snapshot.blockHash },
      'snapshot block is no longer canonical; discarding it',
    );
    return null;
  }
  return snapshot.state;
}

export interface FollowParameters {
  state?: ProtocolState;
  /** Called with each new state, after each finalized block. */
  onState: (state: ProtocolState, block: ChainBlock) => void;
  onError?: (error: unknown) => void;
}

/** Follows finalized heads and feeds every new block through the reducer; resolves to a stop function. */
export async function follow(client: ChainClient, params: FollowParameters): Promise<() => Promise<void>> {
  let state = params.state ?? initialState();
  let queue = Promise.resolve();
  let stopped = false;
  const unsubscribe = await client.api.rpc.chain.subscribeFinalizedHeads((header) => {
    const to = header.number.toNumber();
    queue = queue.then(async () => {
      if (stopped || to <= state.height) return;
      try {
        state = await syncState(client, { state, to, onBlock: (s, b) => !stopped && params.onState(s, b) });
      } catch (error) {
        if (params.onError) params.onError(error);
        else client.logger.error({ err: error }, 'following the chain failed');
      }
    });
  });
  return async () => {
    stopped = true;
    unsubscribe();
    await queue;
  };
}
