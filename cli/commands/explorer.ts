// `fedtune explorer`: serves the web explorer for a chain (and optionally a coordinator) until Ctrl-C.
import type { Argv, CommandModule } from 'yargs';
import { FedtuneError } from '../errors.ts';
import { createLogger } from '../log.ts';
import { withChain, type ChainArgs, type GlobalArgs } from '../options.ts';

// Only light imports at the top (no chain client): the explorer itself is loaded by the handler.
const usage = (message: string) => new FedtuneError('E_USAGE', message, { exitCode: 2 });

const DEFAULT_LISTEN = '127.0.0.1:7400';

interface ExplorerArgs extends GlobalArgs, ChainArgs {
  network?: string;
  coordinator?: string;
  source: string[];
  listen: string;
  from: number;
}

/** "host:port" (or "[::1]:port") → its parts; the same form `fedtune coordinator --listen` takes. */
function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535))
    throw usage(`--listen takes HOST:PORT (e.g. ${DEFAULT_LISTEN}), got ${value}`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

export const explorerCommand: CommandModule<GlobalArgs, ExplorerArgs> = {
  command: 'explorer',
  describe:
    'Serve a web page showing the network: proposals, rounds and loss curves, checkpoints with in-browser verification, workers, audit',
  builder: (y) =>
    withChain(y)
      .option('network', {
        type: 'string',
        default: process.env.FEDTUNE_NETWORK,
        describe:
          'Network shown by default (0x + 64 hex; or $FEDTUNE_NETWORK; default the only one on chain)',
      })
      .option('coordinator', {
        type: 'string',
        describe: "A coordinator's HTTP base URL (e.g. http://127.0.0.1:7300): adds the coordinator page",
      })
      .option('source', {
        type: 'string',
        array: true,
        default: [] as string[],
        describe:
          'Extra checkpoint source after the URI on chain: a base URL or MANIFEST_TEMPLATE|CHUNK_TEMPLATE',
      })
      .option('listen', {
        type: 'string',
        default: DEFAULT_LISTEN,
        describe: 'HOST:PORT to serve the page on',
      })
      .option('from', {
        type: 'number',
        default: 0,
        describe: 'First block to read (the block the network was created in, on long chains)',
      })
      .example('$0 explorer', 'the devnet on ws://127.0.0.1:9944, page at http://127.0.0.1:7400/')
      .example(
        '$0 explorer --chain ws://127.0.0.1:9944 --coordinator http://127.0.0.1:7300',
        'with the coordinator page',
      ) as unknown as Argv<ExplorerArgs>,
  async handler(args) {
    const { host, port } = parseListen(args.listen);
    const network = args.network === undefined || args.network === '' ? null : args.network.toLowerCase();
    if (network !== null && !/^0x[0-9a-f]{64}$/.test(network))
      throw usage(`--network must be 0x followed by 64 hex digits, got ${args.network}`);
    if (args.coordinator !== undefined && !/^https?:\/\//.test(args.coordinator))
      throw usage(
        `--coordinator takes an http(s) base URL like http://127.0.0.1:7300, got ${args.coordinator}`,
      );
    const log = createLogger({ level: args.logLevel });
    // Loaded here, not at the top: `fedtune --help` and other commands do not pay for the explorer.
    const { startExplorer } = await import('../../explorer/index.ts');
    const explorer = await startExplorer({
      chain: args.chain,
      network: network as `0x${string}` | null,
      coordinator: args.coordinator ?? null,
      sources: args.source,
      from: args.from,
      host,
      port,
      logger: log,
    });
    process.stdout.write(
      `${args.json ? JSON.stringify({ url: explorer.url }) : `explorer: ${explorer.url}`}\n`,
    );
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    await explorer.close();
  },
};
