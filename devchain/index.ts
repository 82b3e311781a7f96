// `fedtune devnet` as a library: a real Substrate runtime (Rococo Asset Hub, spec 900) executed by chopsticks in this
// process, with funded dev accounts, instant/batch/manual block production (plus empty blocks on an interval), and
// persistence that survives kill -9.
import './quiet.ts';
import { createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { Logger } from 'pino';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { DevnetError } from './errors.ts';
import { devAccounts, type DevAccount } from './accounts.ts';
import { devGenesisProvider } from './genesis.ts';
import { shareRuntime, type SharedRuntime } from './runtime.ts';
import { routeChopsticksLogs } from './logs.ts';
import { loadChopsticks } from './chopsticks.ts';
import { FileDatabase } from './database.ts';
import { installFutureQueue } from './pool.ts';
import { startBlockTicker, type BlockTicker } from './interval.ts';
import { acquireExecutor, releaseExecutor } from './executor.ts';
import { startRpcServer, type RpcServer } from './rpc-server.ts';
import { installOneTaskBuilder, type BlockBuildStats, type OneTaskBuilder } from './builder.ts';

export { DevnetError } from './errors.ts';
export {
  DEV_ACCOUNT_NAMES,
  DEV_BALANCE,
  devAccounts,
  type DevAccount,
  type DevAccountName,
} from './accounts.ts';
export { FileDatabase, type FileDatabaseOptions } from './database.ts';
export type { BlockBuildStats } from './builder.ts';

export type BlockMode = 'instant' | 'batch' | 'manual';
export const BLOCK_MODES: readonly BlockMode[] = ['instant', 'batch', 'manual'];
export const DEFAULT_DEVNET_PORT = 9944;
/** `one-task`: a block in one runtime task, chopsticks' builder as the fallback; `chopsticks`: always chopsticks'. */
export type BlockBuilder = 'one-task' | 'chopsticks';
export const BLOCK_BUILDERS: readonly BlockBuilder[] = ['one-task', 'chopsticks'];

export interface StartDevnetOptions {
  /** 0 picks a free port. Default 9944. */
  port?: number;
  host?: string;
  /** Keep blocks and state here and resume from them; without it the chain lives in a temporary folder. */
  dataDir?: string;
  blockMode?: BlockMode;
  /** batch mode: build a block this many ms after a transaction arrives in an empty pool (default: when it goes idle). */
  blockTime?: number;
  /**
   * Also build a block whenever none was built for this many ms, so that block-counted deadlines pass with no
   * transactions, as on a live chain. 0 or absent: off (the library default; `fedtune devnet` turns it on).
   */
  blockIntervalMs?: number;
  /** Fork a live chain at this ws(s):// URL instead of running the built-in genesis. */
  fork?: string;
  /** Default `one-task` (docs/devnet.md, "Building a block"). */
  blockBuilder?: BlockBuilder;
  /**
   * A folder where what a start learns from the runtime (its metadata, its slot duration) is kept for the next process,
   * one small file per runtime code. Absent: nothing is kept on disk (devnets in one process still share it).
   */
  runtimeCacheDir?: string;
  logger: Logger;
}

export interface Devnet {
  /** ws://host:port */
  url: string;
  genesisHash: string;
  chainName: string;
  /** Number of the head block when the devnet became ready. */
  startBlock: number;
  /** Whether it resumed from blocks in dataDir. */
  resumed: boolean;
  dataDir: string | null;
  /** Empty blocks come this many ms after the last block; 0: only when transactions (or dev_newBlock) ask. */
  blockIntervalMs: number;
  accounts: DevAccount[];
  /** Builds a block now (the only way blocks appear in manual mode). */
  newBlock(): Promise<{ number: number; hash: string }>;
  /** How many blocks were built in one runtime task, and how many by chopsticks' own builder, since start-up. */
  blockBuildStats(): BlockBuildStats;
  close(): Promise<void>;
}

async function ensurePortFree(port: number, host: string): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const probe = createNetServer();
    probe.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'EADDRINUSE'
          ? new DevnetError(
              'E_DEVNET_PORT_IN_USE',
              `port ${port} on ${host} is in use: stop what holds it, or pass --port with another number`,
            )
          : new DevnetError('E_DEVNET_LISTEN', `cannot listen on ${host}:${port}: ${error.message}`, {
              cause: error,
            }),
      ),
    );
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}

/**
 * A data dir belongs to one chain: devnet.json names it (the genesis hash, or the URL a fork came from), so that blocks
 * of one chain are never resumed on top of another's genesis.
 */
function checkDataDir(dataDir: string, chain: { genesisHash: string } | { fork: string }): void {
  const path = join(dataDir, 'devnet.json');
  if (!existsSync(path)) {
    writeFileSync(`${path}.tmp`, `${JSON.stringify({ chain }, null, 2)}\n`);
    renameSync(`${path}.tmp`, path);
    return;
  }
  let saved: unknown;
  try {
    saved = (JSON.parse(readFileSync(path, 'utf8')) as { chain?: unknown }).chain;
  } catch (error) {
    throw new DevnetError('E_DEVNET_DATA_DIR', `${path} is not readable JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (JSON.stringify(saved) !== JSON.stringify(chain)) {
    throw new DevnetError(
      'E_DEVNET_DATA_DIR_MISMATCH',
      `${dataDir} holds another chain (${JSON.stringify(saved)}, not ${JSON.stringify(chain)}): use another --data-dir, or delete this one to start afresh`,
    );
  }
}

/** chopsticks' WsProvider retries a dead endpoint forever; one plain connection attempt first gives a clear error. */
async function ensureReachable(url: string, timeoutMs = 15_000): Promise<void> {
  const { WebSocket } = await import('ws');
  await new Promise<void>((resolve, reject) => {
    const socket = new WebSocket(url, { handshakeTimeout: timeoutMs });
    const fail = (reason: string) => {
      socket.terminate();
      reject(
        new DevnetError(
          'E_DEVNET_FORK_UNREACHABLE',
          `cannot fork ${url}: ${reason}; check the URL and the network, or run without --fork`,
        ),
      );
    };
    socket.once('open', () => {
      socket.close();
      resolve();
    });
    socket.once('error', (error) => fail(error.message || 'connection failed'));
  });
}

export async function startDevnet(options: StartDevnetOptions): Promise<Devnet> {
  const { port = DEFAULT_DEVNET_PORT, host = '127.0.0.1', blockMode = 'instant', logger } = options;
  if (!BLOCK_MODES.includes(blockMode)) {
    throw new DevnetError(
      'E_DEVNET_BLOCK_MODE',
      `block mode must be one of ${BLOCK_MODES.join(', ')}, got ${JSON.stringify(blockMode)}`,
      { exitCode: 2 },
    );
  }
  if (options.blockBuilder !== undefined && !BLOCK_BUILDERS.includes(options.blockBuilder)) {
    throw new DevnetError(
      'E_DEVNET_BLOCK_BUILDER',
      `block builder must be one of ${BLOCK_BUILDERS.join(', ')}, got ${JSON.stringify(options.blockBuilder)}`,
      { exitCode: 2 },
    );
  }
  if (options.blockTime !== undefined && !(Number.isInteger(options.blockTime) && options.blockTime > 0)) {
    throw new DevnetError(
      'E_DEVNET_BLOCK_TIME',
      `block time must be a positive number of milliseconds, got ${options.blockTime}`,
      { exitCode: 2 },
    );
  }
  const blockIntervalMs = options.blockIntervalMs ?? 0;
  if (!(Number.isFinite(blockIntervalMs) && blockIntervalMs >= 0)) {
    throw new DevnetError(
      'E_DEVNET_BLOCK_INTERVAL',
      `block interval must be a number of milliseconds >= 0 (0 turns it off), got ${options.blockIntervalMs}`,
      { exitCode: 2 },
    );
  }
  await ensurePortFree(port, host);
  if (options.fork !== undefined) await ensureReachable(options.fork);

  const { core } = await loadChopsticks();

  const ephemeral = options.dataDir === undefined;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'fedtune-devnet-'));
  let db: FileDatabase;
  try {
    db = new FileDatabase(join(dataDir, 'chain.jsonl'), { cacheStorage: options.fork !== undefined });
  } catch (error) {
    if (ephemeral) rmSync(dataDir, { recursive: true, force: true });
    throw new DevnetError(
      'E_DEVNET_DATA_DIR',
      `cannot open the chain in ${dataDir}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  const unrouteLogs = routeChopsticksLogs(core, logger);
  try {
    await acquireExecutor(core);
  } catch (error) {
    unrouteLogs();
    await db.close();
    if (ephemeral) rmSync(dataDir, { recursive: true, force: true });
    const reason = `chopsticks' runtime executor did not start: ${(error as Error).message}`;
    throw new DevnetError('E_DEVNET_START', reason, { cause: error });
  }
  if (db.truncatedBytes > 0)
    logger.warn(
      { bytes: db.truncatedBytes },
      'cut off a block torn by a crash; resuming from the last whole one',
    );
  const accounts = await devAccounts();
  // chopsticks hashes through @polkadot/util-crypto (block hashes, its registry's key: an xxhash of the metadata) and
  // does not load its WebAssembly, without which it falls back to JavaScript, 7 times slower on the metadata.
  await cryptoWaitReady();

  const modes = {
    instant: core.BuildBlockMode.Instant,
    batch: core.BuildBlockMode.Batch,
    manual: core.BuildBlockMode.Manual,
  };
  // With --block-time, blocks come from our timer, so chopsticks itself builds only when asked.
  const chopsticksMode =
    blockMode === 'batch' && options.blockTime !== undefined ? core.BuildBlockMode.Manual : modes[blockMode];
  // chopsticks' setup() builds block 1 at once on a genesis chain, which on a resume would replace the saved block 1;
  // so the chain is put together here, and the first block built only on a new chain.
  let chain: InstanceType<typeof core.Blockchain>;
  let runtime: SharedRuntime | null = null;
  try {
    const genesis = options.fork ? null : await devGenesisProvider(core, accounts);
    const { api, blockHash } = await core.processOptions({
      ...(genesis ? { genesis: genesis.provider } : { endpoint: options.fork }),
      db: db as unknown as InstanceType<typeof core.Database>,
    });
    const header = await api.getHeader(blockHash);
    if (!header) throw new Error(`no header for ${blockHash}`);
    chain = new core.Blockchain({
      api,
      buildBlockMode: chopsticksMode,
      inherentProviders: core.inherentProviders,
      db: db as unknown as InstanceType<typeof core.Database>,
      header: { hash: blockHash as `0x${string}`, number: Number(header.number) },
      saveBlocks: true,
      processQueuedMessages: false,
      registeredTypes: {},
    });
    if (genesis)
      runtime = shareRuntime(core, chain.head, genesis.runtime, options.runtimeCacheDir ?? null, logger);
  } catch (error) {
    await db.close();
    await release();
    if (ephemeral) rmSync(dataDir, { recursive: true, force: true });
    throw new DevnetError('E_DEVNET_START', `the runtime did not start: ${(error as Error).message}`, {
      cause: error,
    });
  }

  async function release(): Promise<void> {
    unrouteLogs();
    // chopsticks runs the runtime in one worker thread per process, shared by every chain in it; it stays for the next
    // devnet, but holds the process open only while one is (executor.ts).
    await releaseExecutor(core);
  }

  // chopsticks announces a new head and only then saves the block; a client could see a transaction finalized that a
  // kill -9 at that moment would lose. Saved first, "finalized" means on disk.
  const built = chain;
  built.onNewBlock = async (block) => {
    await built.saveBlockToDB(block);
    await built.setHead(block);
  };
  const builder: OneTaskBuilder | null =
    (options.blockBuilder ?? 'one-task') === 'one-task'
      ? installOneTaskBuilder(core, chain, core.inherentProviders, logger)
      : null;

  let resumed = false;
  let timer: NodeJS.Timeout | null = null;
  let closed = false;
  let building = Promise.resolve();
  let futureQueue: ReturnType<typeof installFutureQueue> | null = null;
  let ticker: BlockTicker | null = null;
  let server: RpcServer;
  try {
    if (!ephemeral)
      checkDataDir(dataDir, options.fork ? { fork: options.fork } : { genesisHash: chain.head.hash });
    const highest = await db.queryHighestBlock();
    if (highest) {
      const block = await chain.loadBlockFromDB(highest.number);
      if (!block)
        throw new DevnetError('E_DEVNET_RESUME', `block ${highest.number} in ${dataDir} cannot be loaded`);
      await chain.setHead(block);
      resumed = true;
      logger.info(
        { number: highest.number, hash: highest.hash },
        'resumed the chain from its data directory',
      );
    } else if (!options.fork) {
      await chain.newBlock();
    }
    await runtime?.save();

    // batch with a block time: the first transaction into an empty pool opens a block, built blockTime ms later with
    // everything that arrived meanwhile.
    const blockTime = blockMode === 'batch' ? options.blockTime : undefined;
    const onPooled = () => {
      if (blockTime === undefined || timer !== null || closed) return;
      timer = setTimeout(() => {
        timer = null;
        building = building.then(
          () => chain.newBlock().then(() => undefined),
          () => undefined,
        );
      }, blockTime);
    };
    const queue = installFutureQueue(core, chain, onPooled, builder ? (x) => builder.ahead(x) : undefined);
    futureQueue = queue;

    // system_accountNextIndex is answered from the future queue, which knows every transaction not yet in a block;
    // AccountNonceApi_account_nonce from storage, without a runtime call.
    // Everything else is chopsticks-core's method of that name (substrate's and its dev_* methods).
    const methods = core.allHandlers as Record<
      string,
      (context: { chain: typeof chain }, params: unknown[], subscriptions: unknown) => Promise<unknown>
    >;
    server = await startRpcServer(
      async (request, subscriptions) => {
        if (request.method === 'system_accountNextIndex' && typeof request.params[0] === 'string') {
          return queue.nextIndex(request.params[0]);
        }
        // @polkadot/api asks this runtime API for the nonce of every transaction it signs: answered from storage.
        const [method, data, at] = request.params;
        if (
          request.method === 'state_call' &&
          method === 'AccountNonceApi_account_nonce' &&
          typeof data === 'string' &&
          /^0x[0-9a-fA-F]{64}$/.test(data) &&
          (at === undefined || at === null || at === chain.head.hash)
        ) {
          return queue.accountNonce(data);
        }
        const run = Object.hasOwn(methods, request.method) ? methods[request.method] : undefined;
        if (!run) throw new core.ResponseError(-32601, `Method not found: ${request.method}`);
        return run({ chain }, request.params, subscriptions);
      },
      port,
      host,
      logger,
    );
    if (blockIntervalMs > 0) ticker = startBlockTicker(chain, blockIntervalMs, logger);
  } catch (error) {
    if (timer) clearTimeout(timer);
    await ticker?.dispose();
    futureQueue?.dispose();
    await builder?.dispose();
    await chain.close().catch(() => undefined);
    await release();
    if (ephemeral) rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  const url = `ws://${host.includes(':') ? `[${host}]` : host}:${server.port}`;
  const genesisHash = (await chain.getBlockAt(0))?.hash ?? '0x';
  const chainName = await chain.api.getSystemChain();
  logger.info(
    {
      url,
      chain: chainName,
      genesisHash,
      head: chain.head.number,
      mode: blockMode,
      blockIntervalMs,
      dataDir: ephemeral ? null : dataDir,
    },
    'devnet ready',
  );

  return {
    url,
    genesisHash,
    chainName,
    startBlock: chain.head.number,
    resumed,
    dataDir: ephemeral ? null : dataDir,
    blockIntervalMs,
    accounts,
    async newBlock() {
      const block = await chain.newBlock();
      return { number: block.number, hash: block.hash };
    },
    blockBuildStats: () => builder?.stats() ?? { oneTask: 0, fallback: 0, ahead: 0 },
    async close() {
      if (closed) return;
      closed = true;
      if (timer) clearTimeout(timer);
      await ticker?.dispose();
      futureQueue.dispose();
      await building.catch(() => undefined);
      await server.close();
      await builder?.dispose();
      await chain.close();
      await db.close();
      await release();
      if (ephemeral) rmSync(dataDir, { recursive: true, force: true });
      logger.info('devnet stopped');
    },
  };
}
