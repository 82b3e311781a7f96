// What the chain-facing commands share: the network option, one connection per command, state sync, checked submission.
// pallet-bindings (and with it @polkadot/api) loads inside the functions that talk to the chain, so `--help` stays light.
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Argv } from 'yargs';
import type {
  ChainClient,
  Hex32,
  Inclusion,
  NetworkState,
  ProtocolState,
  Quorum,
  SubmitParameters,
} from '../pallet-bindings/index.ts';
import { isHex32 } from '../merkle/index.ts';
import { FedtuneError } from './errors.ts';
import { createLogger, type Logger } from './log.ts';
import { processIo, type ChainArgs, type GlobalArgs } from './options.ts';

export interface NetworkArgs {
  network: string;
  from: number;
}

export function withNetwork<T>(yargs: Argv<T>, demand = true): Argv<T & NetworkArgs> {
  return yargs
    .option('network', {
      type: 'string',
      demandOption: demand && process.env.FEDTUNE_NETWORK === undefined,
      default: process.env.FEDTUNE_NETWORK,
      describe: 'Network id (0x + 64 hex digits, printed by `network create`; or $FEDTUNE_NETWORK)',
    })
    .option('from', {
      type: 'number',
      default: 0,
      describe:
        'First block to read the protocol state from (the block the network was created in, on long chains)',
    }) as unknown as Argv<T & NetworkArgs>;
}

export function logger(args: GlobalArgs): Logger {
  const logs = args.io?.logs;
  return createLogger({ level: args.logLevel, ...(logs ? { destination: { write: logs } } : {}) });
}

export function print(args: GlobalArgs, json: unknown, text: () => string): void {
  (args.io ?? processIo).stdout(args.json ? `${JSON.stringify(json, null, 2)}\n` : `${text()}\n`);
}

export function usage(message: string): FedtuneError {
  return new FedtuneError('E_USAGE', message, { exitCode: 2 });
}

export function parseNetworkId(value: string | undefined): Hex32 {
  const v = value?.toLowerCase();
  if (!isHex32(v)) throw usage(`--network must be 0x followed by 64 hex digits, got ${value ?? '(nothing)'}`);
  return v;
}

export function parseHex32(name: string, value: string): Hex32 {
  const v = value.toLowerCase();
  if (!isHex32(v)) throw usage(`${name} must be 0x followed by 64 hex digits, got ${value}`);
  return v;
}

/** The canonical SS58 form of an address (E_BAD_ACCOUNT otherwise); async because the SS58 codec loads on first use. */
export async function parseAccount(value: string): Promise<string> {
  const { toAccount } = await import('../pallet-bindings/index.ts');
  return toAccount(value);
}

/** --code: a failure code as the protocol bounds it (E_BAD_CODE otherwise), checked before any chain call. */
export async function parseFailureCode(code: string): Promise<string> {
  const { isFailureCode, MAX_FAILURE_CODE_CHARS } = await import('../pallet-bindings/index.ts');
  if (!isFailureCode(code))
    throw new FedtuneError(
      'E_BAD_CODE',
      `--code must be 1 to ${MAX_FAILURE_CODE_CHARS} characters of A-Z, 0-9 and _ starting with a letter, like E_WORK_MISMATCH; got ${JSON.stringify(code)}`,
      { exitCode: 2 },
    );
  return code;
}

/** "2/3", "67%" or "0.5" → a fraction in (0, 1]. */
export function parseQuorum(value: string): Quorum {
  let q: Quorum | undefined;
  const frac = /^(\d+)\/(\d+)$/.exec(value);
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(value);
  if (frac) q = { numerator: Number(frac[1]), denominator: Number(frac[2]) };
  else if (pct) q = { numerator: Math.round(Number(pct[1]) * 100), denominator: 10_000 };
  else if (/^0?\.\d+$|^1$/.test(value))
    q = { numerator: Math.round(Number(value) * 10_000), denominator: 10_000 };
  if (!q || q.denominator === 0 || q.numerator === 0 || q.numerator > q.denominator) {
    throw usage(`--quorum must be a fraction of the members in (0, 1] like 2/3, 67% or 0.5, got ${value}`);
  }
  return q;
}

/** Planck as digits; rejects anything else. */
export function parseAmount(name: string, value: string | number): string {
  const s = String(value);
  if (!/^\d+$/.test(s)) throw usage(`${name} must be a whole number of planck, got ${s}`);
  return BigInt(s).toString();
}

/** Connects, runs `fn`, and always disconnects. */
export async function withClient<R>(
  args: GlobalArgs & ChainArgs,
  log: Logger,
  fn: (client: ChainClient) => Promise<R>,
): Promise<R> {
  const { connect } = await import('../pallet-bindings/index.ts');
  const client = await connect({ url: args.chain, logger: log, attempts: 3 });
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

/**
 * Where chain commands cache the reducer's state between runs: $FEDTUNE_CHAIN_CACHE (`off`: no cache) or
 * ~/.cache/fedtune/chain.
 */
export function chainCacheDir(env: NodeJS.ProcessEnv = process.env): string | null {
  const v = env.FEDTUNE_CHAIN_CACHE;
  if (v === 'off') return null;
  return v !== undefined && v !== '' ? v : join(homedir(), '.cache', 'fedtune', 'chain');
}

/**
 * The protocol state folded from `from` to `to` (default the finalized head), for one network or all: resumed from the
 * state the last command cached for this chain, so only blocks finalized since are read.
 */
export async function readState(
  client: ChainClient,
  options: { network?: Hex32 | null; from?: number; to?: number } = {},
): Promise<ProtocolState> {
  const { syncCached } = await import('../pallet-bindings/index.ts');
  return syncCached(client, {
    dir: chainCacheDir(),
    only: options.network ?? null,
    from: options.from,
    to: options.to,
  });
}

export function networkOf(state: ProtocolState, id: Hex32): NetworkState {
  const net = state.networks[id];
  if (net === undefined) {
    throw new FedtuneError('E_UNKNOWN_NETWORK', `no network ${id} on this chain`);
  }
  return net;
}

/**
 * Submits, waits for finality, then folds the chain up to the inclusion block and reports the reducer's verdict:
 * a call that broke a rule fails the command with the rule's code and reason.
 */
export async function submitChecked(
  client: ChainClient,
  params: SubmitParameters,
  from = 0,
): Promise<{ inclusion: Inclusion; state: ProtocolState }> {
  const { submitChecked: submitCheckedAction } = await import('../pallet-bindings/index.ts');
  return submitCheckedAction(client, {
    ...params,
    sync: (to) => readState(client, { network: params.network, from, to }),
  });
}
