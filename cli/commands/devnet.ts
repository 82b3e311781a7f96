// `fedtune devnet`: the embedded dev chain (devchain/) in the foreground until SIGINT/SIGTERM.
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import type { BlockMode } from '../../devchain/index.ts';
import { BLOCK_MODES, DEFAULT_DEVNET_PORT } from '../choices.ts';
import { createLogger } from '../log.ts';
import { FedtuneError } from '../errors.ts';
import type { GlobalArgs } from '../options.ts';

interface DevnetArgs extends GlobalArgs {
  port: number;
  host: string;
  'data-dir'?: string;
  dataDir?: string;
  tmp?: boolean;
  'block-mode': BlockMode;
  blockMode: BlockMode;
  'block-time'?: number;
  blockTime?: number;
  'block-interval'?: number;
  blockInterval?: number;
  fork?: string;
}

/** A live chain's slot: with no transactions, a block every 6 s, so block-counted deadlines pass. */
export const DEFAULT_BLOCK_INTERVAL_S = 6;

export const DEFAULT_DATA_DIR = '.fedtune/devnet';

/**
 * Where a devnet (`fedtune devnet`, `fedtune demo`) keeps what it learned from the runtime (its metadata, slot duration
 * and version) for the next start: $FEDTUNE_DEVNET_CACHE (`off`: nowhere) or ~/.cache/fedtune/devnet.
 */
export function devnetCacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const v = env.FEDTUNE_DEVNET_CACHE;
  if (v === 'off') return undefined;
  return v !== undefined && v !== '' ? resolve(v) : join(homedir(), '.cache', 'fedtune', 'devnet');
}

export const devnetCommand: CommandModule<GlobalArgs, DevnetArgs> = {
  command: 'devnet',
  describe:
    'Run the embedded dev chain: a real Substrate runtime (Rococo Asset Hub) under chopsticks, offline',
  builder: (yargs: Argv<GlobalArgs>) =>
    yargs
      .option('port', {
        type: 'number',
        default: DEFAULT_DEVNET_PORT,
        describe: 'WebSocket/HTTP JSON-RPC port (0: any free port)',
      })
      .option('host', {
        type: 'string',
        default: '127.0.0.1',
        describe: 'Address to bind; 0.0.0.0 exposes it to the network',
      })
      .option('data-dir', {
        type: 'string',
        describe: `Keep blocks and state here and resume from them after a restart (default ${DEFAULT_DATA_DIR})`,
      })
      .option('tmp', {
        type: 'boolean',
        describe: 'An ephemeral chain in a temporary folder, deleted on exit',
      })
      .conflicts('tmp', 'data-dir')
      .option('block-mode', {
        choices: BLOCK_MODES,
        default: 'instant' as BlockMode,
        describe:
          'instant: a block per transaction; batch: pending transactions together; manual: only on dev_newBlock',
      })
      .option('block-time', {
        type: 'number',
        describe: 'batch mode: build a block MS milliseconds after a transaction arrives in an empty pool',
      })
      .option('block-interval', {
        type: 'number',
        defaultDescription: `${DEFAULT_BLOCK_INTERVAL_S} (0 with --block-mode manual)`,
        describe:
          'Also build an (empty) block when none was built for SECONDS, so voting periods and deadlines pass; 0: off',
      })
      .option('fork', {
        type: 'string',
        describe: 'Fork a live chain at this ws(s):// URL instead of the built-in genesis (needs a network)',
      })
      .check((argv) => {
        const usage = (message: string) => {
          throw new FedtuneError('E_USAGE', message, { exitCode: 2 });
        };
        if (!Number.isInteger(argv.port) || argv.port < 0 || argv.port > 65535)
          usage(`--port must be a whole number 0..65535, got ${argv.port}`);
        const blockTime = argv['block-time'];
        if (blockTime !== undefined && argv['block-mode'] !== 'batch')
          usage('--block-time applies to --block-mode batch');
        if (blockTime !== undefined && !(Number.isInteger(blockTime) && blockTime > 0))
          usage(`--block-time must be a positive whole number of milliseconds, got ${blockTime}`);
        const interval = argv['block-interval'];
        if (interval !== undefined && !(Number.isFinite(interval) && interval >= 0))
          usage(`--block-interval must be a number of seconds >= 0 (0 turns it off), got ${interval}`);
        if (interval !== undefined && interval > 0 && argv['block-mode'] === 'manual')
          usage(
            '--block-mode manual builds blocks only on dev_newBlock; drop --block-interval or pick another mode',
          );
        if (argv.fork !== undefined && !/^wss?:\/\//.test(argv.fork))
          usage(`--fork takes a ws:// or wss:// URL, got ${argv.fork}`);
        return true;
      })
      .example(
        '$0 devnet',
        `the dev chain on ws://127.0.0.1:${DEFAULT_DEVNET_PORT}, kept in ${DEFAULT_DATA_DIR}`,
      )
      .example(
        '$0 devnet --tmp --port 0',
        'an ephemeral chain on any free port (export FEDTUNE_CHAIN=<the URL it prints>)',
      )
      .example('$0 devnet --block-interval 1', 'an empty block every second while nobody transacts')
      .example(
        '$0 devnet --block-mode batch --block-time 6000',
        'transactions gathered for 6 s into one block, like a live chain',
      ) as Argv<DevnetArgs>,
  handler: async (argv) => {
    const { DEV_BALANCE, startDevnet } = await import('../../devchain/index.ts');
    const logger = createLogger({ level: argv.logLevel });
    const dataDir = argv.tmp === true ? undefined : resolve(argv.dataDir ?? DEFAULT_DATA_DIR);
    const blockInterval = argv.blockInterval ?? (argv.blockMode === 'manual' ? 0 : DEFAULT_BLOCK_INTERVAL_S);
    const devnet = await startDevnet({
      port: argv.port,
      host: argv.host,
      dataDir,
      blockMode: argv.blockMode,
      blockTime: argv.blockTime,
      blockIntervalMs: Math.round(blockInterval * 1000),
      fork: argv.fork,
      runtimeCacheDir: devnetCacheDir(),
      logger,
    });
    // Handlers first, then the ready line: a SIGTERM sent as soon as a script reads that line must find them.
    const stopped = new Promise<void>((resolveStop) => {
      const stop = (signal: string) => {
        logger.info({ signal }, 'stopping');
        devnet.close().then(resolveStop, (error: unknown) => {
          logger.error({ err: error }, 'unclean stop');
          resolveStop();
        });
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });
    const summary = {
      url: devnet.url,
      chain: devnet.chainName,
      genesisHash: devnet.genesisHash,
      head: devnet.startBlock,
      resumed: devnet.resumed,
      dataDir: devnet.dataDir,
      blockMode: argv.blockMode,
      blockInterval,
      accounts: devnet.accounts.map((a) => ({ name: a.name, uri: a.uri, address: a.address })),
    };
    if (argv.json) {
      process.stdout.write(`${JSON.stringify(summary)}\n`);
    } else {
      const balance = `${DEV_BALANCE / 10n ** 12n} ROC each`;
      process.stdout.write(
        [
          `fedtune devnet: ${devnet.chainName} at ${devnet.url}`,
          `  genesis ${devnet.genesisHash}, head #${devnet.startBlock}${devnet.resumed ? ' (resumed)' : ''}, ${argv.blockMode} blocks${blockInterval > 0 ? `, an empty one after ${blockInterval} s idle` : ''}`,
          `  data: ${devnet.dataDir ?? 'temporary, deleted on exit'}`,
          `  dev accounts (sr25519, ${balance}):`,
          ...devnet.accounts.map((a) => `    ${a.uri.padEnd(9)} ${a.address}`),
          // Every other command reaches the chain through --chain or $FEDTUNE_CHAIN; a port other than the default
          // must be passed on.
          ...(devnet.url === `ws://127.0.0.1:${DEFAULT_DEVNET_PORT}`
            ? []
            : [`  for the other commands: export FEDTUNE_CHAIN=${devnet.url}`]),
          '  Ctrl-C stops it.',
          '',
        ].join('\n'),
      );
    }
    await stopped;
  },
};
