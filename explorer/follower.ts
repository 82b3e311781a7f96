// Follows the chain for the explorer: one sync up to the finalized head, then every new finalized block through the
// reducer, and whether the node answers — told to listeners so the server can push updates to open pages.
import type { Logger } from 'pino';
import {
  follow,
  initialState,
  syncState,
  type ChainBlock,
  type ChainClient,
  type ProtocolState,
} from '../pallet-bindings/index.ts';
import type { ChainStatus } from './view.ts';

export type FollowerEvent = { type: 'head'; height: number; blockHash: string | null } | { type: 'chain' };

export interface Follower {
  state(): ProtocolState;
  /** The block each vote was cast in, by proposal and account (the reducer keeps the vote, not its block). */
  votedAt(network: string): Record<number, Record<string, number>>;
  status(): ChainStatus;
  /** Returns the function that removes the listener. */
  on(listener: (event: FollowerEvent) => void): () => void;
  close(): Promise<void>;
}

export async function followChain(params: {
  client: ChainClient;
  /** First block to read (the block the network was created in, on long chains). */
  from?: number;
  logger: Logger;
}): Promise<Follower> {
  const { client, logger } = params;
  const listeners = new Set<(event: FollowerEvent) => void>();
  const emit = (event: FollowerEvent) => {
    for (const listener of listeners) listener(event);
  };
  let connected = true;
  let error: string | null = null;

  // The reducer keeps who voted, not when: a vote is dated by the block after which it first appears.
  const votes = new Map<string, Record<number, Record<string, number>>>();
  const dateVotes = (s: ProtocolState, block: ChainBlock) => {
    for (const net of Object.values(s.networks)) {
      let byProposal = votes.get(net.id);
      for (const p of net.proposals) {
        if (p.decidedAt !== null && p.decidedAt < block.number) continue;
        for (const account of Object.keys(p.votes)) {
          if (byProposal?.[p.id]?.[account] !== undefined) continue;
          if (!byProposal) votes.set(net.id, (byProposal = {}));
          (byProposal[p.id] ??= {})[account] = block.number;
        }
      }
    }
  };

  // Every network is followed (no `only`), so an unknown --network can be answered with the ones that exist.
  let state = await syncState(client, { state: initialState(), from: params.from, onBlock: dateVotes });
  logger.info({ height: state.height, networks: Object.keys(state.networks).length }, 'explorer synced');

  const onDisconnected = () => {
    connected = false;
    error = `lost the node at ${client.url}; reconnecting (the pages show the state at block ${state.height} until it answers)`;
    logger.warn({ url: client.url }, 'chain node disconnected');
    emit({ type: 'chain' });
  };
  const onConnected = () => {
    if (connected) return;
    connected = true;
    error = null;
    logger.info({ url: client.url }, 'chain node reconnected');
    emit({ type: 'chain' });
  };
  client.api.on('disconnected', onDisconnected);
  client.api.on('connected', onConnected);

  const stop = await follow(client, {
    state,
    onState: (next, block) => {
      state = next;
      dateVotes(next, block);
      emit({ type: 'head', height: next.height, blockHash: next.blockHash });
    },
    onError: (cause) => {
      error = `following the chain failed at block ${state.height + 1}: ${(cause as Error).message}`;
      logger.error({ err: cause }, 'following the chain failed');
      emit({ type: 'chain' });
    },
  });

  return {
    state: () => state,
    votedAt: (network) => votes.get(network) ?? {},
    status: () => ({
      url: client.url,
      genesisHash: client.genesisHash,
      connected,
      error,
      height: state.height,
      blockHash: state.blockHash,
    }),
    on(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      listeners.clear();
      client.api.off('disconnected', onDisconnected);
      client.api.off('connected', onConnected);
      await stop();
    },
  };
}
