// `fedtune demo --explorer`: after the run, the demo's chain comes back from its folder, the coordinator's checkpoint
// store is served, and the explorer shows every round and checkpoint of summary.json until Ctrl-C.
import { join } from 'node:path';
import type { Logger } from 'pino';
import { openStore, serveCheckpoints } from '../checkpoints/index.ts';
import { startDevnet } from '../devchain/index.ts';
import { startExplorer } from '../explorer/index.ts';
import type { Hex32 } from '../pallet-bindings/index.ts';
import type { DemoSummary } from './summary.ts';

export interface DemoExplorer {
  url: string;
  close(): Promise<void>;
}

export async function exploreDemo(params: {
  out: string;
  summary: DemoSummary;
  host?: string;
  port?: number;
  logger: Logger;
}): Promise<DemoExplorer> {
  const devnet = await startDevnet({ port: 0, dataDir: params.summary.chain.dataDir, logger: params.logger });
  const store = await serveCheckpoints({ store: await openStore(join(params.out, 'coordinator', 'store')) });
  try {
    const explorer = await startExplorer({
      chain: devnet.url,
      network: params.summary.network as Hex32,
      sources: [store.url],
      host: params.host,
      port: params.port ?? 0,
      logger: params.logger,
    });
    return {
      url: explorer.url,
      async close() {
        await explorer.close();
        await store.close();
        await devnet.close();
      },
    };
  } catch (error) {
    await store.close();
    await devnet.close();
    throw error;
  }
}

/** The commands that show a finished demo's network in a browser (its own --explorer does all of it). */
export function explorerHint(out: string, summary: DemoSummary): string {
  return [
    `explorer: fedtune demo --explorer … serves it after the run; for this run's chain:`,
    `  fedtune devnet --data-dir ${summary.chain.dataDir} --port 9955 &`,
    `  fedtune explorer --chain ws://127.0.0.1:9955 --network ${summary.network}   (checkpoints: add --source with a server for ${join(out, 'coordinator', 'store')})`,
  ].join('\n');
}
