// Options that several subcommands share, defined once so every command spells them the same way.
import type { Argv } from 'yargs';
import type { LevelWithSilent } from 'pino';

export const DEFAULT_CHAIN_URL = 'ws://127.0.0.1:9944';

export const LOG_LEVELS: readonly LevelWithSilent[] = [
  'trace',
  'debug',
  'info',
  'warn',
  'error',
  'fatal',
  'silent',
];

/** Where a command's results and main's messages go: the process's stdout and stderr, or a test's buffers. */
export interface Io {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Where commands' logs go (JSON lines); the process's stderr when absent. The demo captures them per command. */
  logs?(text: string): void;
}

export const processIo: Io = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
};

export interface GlobalArgs {
  'log-level': LevelWithSilent;
  logLevel: LevelWithSilent;
  json: boolean;
  /** main's io, handed to every handler (yargs merges it into the arguments); results are printed through it. */
  io?: Io;
}

export interface ChainArgs {
  chain: string;
}

export function withChain<T>(yargs: Argv<T>): Argv<T & ChainArgs> {
  return yargs.option('chain', {
    type: 'string',
    default: process.env.FEDTUNE_CHAIN ?? DEFAULT_CHAIN_URL,
    defaultDescription: `$FEDTUNE_CHAIN or ${DEFAULT_CHAIN_URL} (fedtune devnet)`,
    describe: 'WebSocket URL of the Substrate node: `fedtune devnet` or any real node (ws:// or wss://)',
  }) as Argv<T & ChainArgs>;
}
