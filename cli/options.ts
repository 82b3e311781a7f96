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

export interface GlobalArgs {
  'log-level': LevelWithSilent;
  logLevel: LevelWithSilent;
  json: boolean;
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
