// Public face of explorer/: `startExplorer` serves the web application for a chain (and optionally a coordinator).
import type { Logger } from 'pino';
import { connect, type ChainClient, type Hex32 } from '../pallet-bindings/index.ts';
import { watchCoordinator, type CoordinatorWatch } from './coordinator.ts';
import { followChain } from './follower.ts';
import { startExplorerServer } from './server.ts';

export { ExplorerError } from './errors.ts';
export { parsePrometheus } from './coordinator.ts';
export type { CoordinatorSample, CoordinatorView, ExplorerView, SourceView } from './view.ts';

export const DEFAULT_EXPLORER_LISTEN = '127.0.0.1:7400';

export interface StartExplorerParameters {
  /** A chain URL (ws:// or wss://) to connect to, or a client the caller already holds (and keeps: not closed here). */
  chain: string | ChainClient;
  /** The network the pages show by default; without it, the only network on chain, or a list to pick from. */
  network?: Hex32 | null;
  /** A coordinator's HTTP base URL, for the coordinator page. */
  coordinator?: string | null;
  /** Extra checkpoint sources (base URLs or `MANIFEST_TEMPLATE|CHUNK_TEMPLATE`), tried after the one on chain. */
  sources?: string[];
  /** First block to read (the block the network was created in, on long chains). */
  from?: number;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** How often the coordinator is polled (default 5 s). */
  coordinatorPollMs?: number;
  logger: Logger;
}

export interface Explorer {
  /** http://host:port/ — open it in a browser. */
  url: string;
  close(): Promise<void>;
}

/** Syncs the chain up to its finalized head, then serves the explorer and follows new finalized blocks. */
export async function startExplorer(params: StartExplorerParameters): Promise<Explorer> {
  const { logger } = params;
  const ownClient = typeof params.chain === 'string';
  const client =
    typeof params.chain === 'string' ? await connect({ url: params.chain, logger }) : params.chain;
  let watch: CoordinatorWatch | null = null;
  try {
    const follower = await followChain({ client, from: params.from, logger });
    watch =
      params.coordinator != null
        ? watchCoordinator({ url: params.coordinator, intervalMs: params.coordinatorPollMs, logger })
        : null;
    const server = await startExplorerServer({
      follower,
      coordinator: watch,
      network: params.network ?? null,
      sources: params.sources ?? [],
      host: params.host ?? '127.0.0.1',
      port: params.port ?? 7400,
      logger,
    }).catch(async (error: unknown) => {
      await follower.close();
      throw error;
    });
    logger.info({ url: server.url, chain: client.url }, 'explorer listening');
    return {
      url: server.url,
      async close() {
        watch?.close();
        await server.close();
        await follower.close();
        if (ownClient) await client.close();
      },
    };
  } catch (error) {
    watch?.close();
    if (ownClient) await client.close();
    throw error;
  }
}
