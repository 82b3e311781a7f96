// `fedtune worker run`: the trainer's runtime. Registers the key if needed, connects to a coordinator, trains the tasks it
// is given and uploads signed updates, showing download, training and upload progress.
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import type { BackendChoice } from '../../model/index.ts';
import type { ReceiptChain, WorkerEvent } from '../../worker/index.ts';
import type { ProtocolState } from '../../pallet-bindings/index.ts';
import { BACKEND_CHOICES } from '../choices.ts';
import { loadSigner, withSigner, type SignerArgs } from '../keys.ts';
import { withChain, type ChainArgs, type GlobalArgs } from '../options.ts';
import {
  logger as makeLogger,
  parseNetworkId,
  readState,
  usage,
  withClient,
  type NetworkArgs,
} from '../protocol.ts';
import { registerWorker, workerSubcommands } from './worker.ts';
import { FedtuneError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { isHex32, type Hex32 } from '../../merkle/index.ts';

interface RunArgs extends GlobalArgs, ChainArgs, SignerArgs, Partial<NetworkArgs> {
  coordinator: string;
  data?: string;
  cache?: string;
  backend: BackendChoice;
  register: boolean;
  maxTasks?: number;
}

/** One status line on a terminal, rewritten in place. */
function statusLine(): (text: string | null) => void {
  if (!process.stderr.isTTY) return () => undefined;
  return (text) => {
    process.stderr.write(`\r\x1b[2K${text ?? ''}`);
    if (text === null) process.stderr.write('\r');
  };
}

const mb = (n: number) => (n / 1e6).toFixed(2);

/** After SIGTERM/SIGINT the process ends within this, whatever a task in training is doing. */
const STOP_GRACE_MS = 2_500;

/**
 * The network a coordinator serves, from its /health (`{ network }`), or null when it does not answer within a few
 * tries (it may start later; the connection itself retries).
 */
async function coordinatorNetwork(coordinator: string, log: Logger): Promise<Hex32 | null> {
  const url = new URL(coordinator);
  url.protocol = url.protocol === 'wss:' ? 'https:' : 'http:';
  url.pathname = '/health';
  for (let attempt = 1; attempt <= 5; attempt++) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(3_000) });
      const body = (await response.json()) as { network?: unknown };
      if (typeof body.network === 'string' && isHex32(body.network.toLowerCase()))
        return body.network.toLowerCase() as Hex32;
      return null;
    } catch (error) {
      log.debug({ err: error, url: url.href, attempt }, 'coordinator /health did not answer');
      await new Promise((r) => setTimeout(r, 500 * attempt));
    }
  }
  return null;
}

const run: CommandModule<GlobalArgs, RunArgs> = {
  command: 'run',
  describe:
    'Train for a coordinator: take tasks, verify data and base checkpoint, train, upload signed updates',
  builder: (y) =>
    withSigner(withChain(y))
      .option('coordinator', {
        type: 'string',
        demandOption: true,
        describe: "The coordinator's WebSocket URL (ws://host:7300), as `fedtune coordinator` prints it",
      })
      .option('network', {
        type: 'string',
        default: process.env.FEDTUNE_NETWORK,
        describe:
          'Network id ($FEDTUNE_NETWORK; default: the one the coordinator serves): the key is registered as a worker first if it is not yet',
      })
      .option('from', { type: 'number', default: 0, describe: 'First block to read the protocol state from' })
      .option('register', {
        type: 'boolean',
        default: true,
        describe: 'Register on chain when not registered; --no-register to only check',
      })
      .option('data', {
        type: 'string',
        describe:
          "Your copy of a dataset that is not built in (folder of .txt or a .jsonl); checked against the chain's root. The coordinator needs its own copy too (fedtune coordinator --data NAME=PATH)",
      })
      .option('cache', {
        type: 'string',
        defaultDescription: '~/.cache/fedtune/worker/<network>/<account>',
        describe:
          'Base checkpoints and receipts (one JSON per task under receipts/); the default is per network and account, so several trainers share a machine',
      })
      .option('backend', {
        choices: BACKEND_CHOICES,
        default: 'auto' as BackendChoice,
        describe: 'TensorFlow.js backend (auto: tensorflow/GPU if installed, else wasm)',
      })
      .option('max-tasks', { type: 'number', describe: 'Exit after this many tasks' })
      .check((argv) => {
        if (!/^wss?:\/\//.test(argv.coordinator))
          throw usage(`--coordinator must be a ws:// or wss:// URL, got ${argv.coordinator}`);
        const maxTasks = argv.maxTasks as number | undefined;
        if (maxTasks !== undefined && !(Number.isInteger(maxTasks) && maxTasks >= 1))
          throw usage('--max-tasks must be a positive whole number');
        return true;
      })
      .example(
        '$0 worker run --coordinator ws://127.0.0.1:7300 --seed //Bob --network 0x…',
        'register //Bob if needed, then train for the local coordinator',
      )
      .example(
        '$0 worker run --coordinator ws://127.0.0.1:7300 --seed //Eve',
        "the network is the coordinator's; the cache is ~/.cache/fedtune/worker/<network>/<account>",
      ) as unknown as Argv<RunArgs>,
  async handler(args) {
    const { initBackend } = await import('../../model/index.ts');
    const { runWorker } = await import('../../worker/index.ts');
    const log = makeLogger(args);
    const signer = await loadSigner(args);
    const backend = await initBackend({ backend: args.backend, logger: log });
    // The network comes from --network, else from the coordinator itself (its /health names the network it serves),
    // so that registering "if needed" works with nothing but --coordinator and a key.
    const served = await coordinatorNetwork(args.coordinator, log);
    const given = args.network !== undefined ? parseNetworkId(args.network) : null;
    if (given !== null && served !== null && given !== served)
      throw new FedtuneError(
        'E_NETWORK_MISMATCH',
        `the coordinator at ${args.coordinator} serves network ${served}, not ${given}: drop --network (or $FEDTUNE_NETWORK), or name that network's coordinator`,
        { exitCode: 2 },
      );
    const network = given ?? served;
    // With a network: challenges are signed only for its coordinators, and receipts are checked against the chain.
    let expect: { network: string; coordinators: string[] } | undefined;
    let chain: ReceiptChain | undefined;
    if (network === null)
      log.warn(
        { coordinator: args.coordinator },
        "the coordinator's network is unknown (its /health did not answer): not checking the registration; pass --network to register",
      );
    else {
      // The state is kept between checks, so each one folds only the blocks since the last.
      const { syncState } = await import('../../pallet-bindings/index.ts');
      let known: ProtocolState | undefined;
      chain = {
        finalizedRound: (proposal, round) =>
          withClient(args, log, async (client) => {
            known = known
              ? await syncState(client, { state: known })
              : await readState(client, { network, from: args.from });
            const p = known.networks[network]?.proposals[proposal];
            return (p?.type === 'round' ? p.finalized[round] : undefined) ?? null;
          }),
      };
      await withClient(args, log, async (client) => {
        const state = await readState(client, { network, from: args.from });
        const net = state.networks[network];
        if (net === undefined) throw usage(`no network ${network} on ${args.chain}`);
        expect = { network, coordinators: net.coordinators };
        if (net.workers[signer.address] !== undefined) return;
        if (!args.register) throw usage(`${signer.address} is not a registered worker (drop --no-register)`);
        const inclusion = await registerWorker(
          client,
          signer,
          network,
          { capabilities: { backend: backend.name, device: 'cpu', memoryBytes: 0 }, endpoint: null },
          args.from ?? 0,
        );
        log.info({ worker: signer.address, block: inclusion.blockNumber }, 'registered as a worker');
      });
    }
    // One cache per network and account: two trainers on one machine never share receipts or half-written files.
    const cacheDir = resolve(
      args.cache ?? join(homedir(), '.cache', 'fedtune', 'worker', network ?? 'any-network', signer.address),
    );
    log.info({ cache: cacheDir }, 'cache');
    const status = statusLine();
    const onEvent = (e: WorkerEvent) => {
      switch (e.type) {
        case 'task':
          status(null);
          log.info({ proposal: e.proposal, round: e.round, shards: e.shards }, `task ${e.taskId}`);
          break;
        case 'download':
          status(`download base checkpoint ${mb(e.received)}/${mb(e.total)} MB`);
          break;
        case 'step':
          status(`train step ${e.step}/${e.steps}  loss ${e.loss.toFixed(4)}`);
          if (!process.stderr.isTTY) log.debug({ step: e.step, steps: e.steps, loss: e.loss }, 'train step');
          break;
        case 'upload':
          status(`upload ${mb(e.sent)}/${mb(e.total)} MB`);
          break;
        case 'ack':
          status(null);
          log.info(
            { proposal: e.proposal, round: e.round, updateHash: e.updateHash, trainLoss: e.trainLoss },
            `update acknowledged: ${mb(e.bytes)} MB sent (${mb(e.denseBytes)} MB dense)`,
          );
          if (args.json) process.stdout.write(`${JSON.stringify(e)}\n`);
          break;
        case 'taskFailed':
          status(null);
          break;
        case 'result':
          if (args.json) process.stdout.write(`${JSON.stringify(e)}\n`);
          break;
      }
    };
    const worker = runWorker({
      url: args.coordinator,
      signer,
      cacheDir,
      data: args.data !== undefined ? resolve(args.data) : undefined,
      logger: log,
      onEvent,
      maxTasks: args.maxTasks,
      expect,
      chain,
    });
    let signalled = false;
    const stop = (signal: string) => {
      if (signalled) return;
      signalled = true;
      status(null);
      log.info({ signal }, 'stopping');
      // A task in training holds the thread between steps; the stop must not wait for the task to finish.
      setTimeout(() => process.exit(0), STOP_GRACE_MS).unref();
      void worker.close();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    // Authentication failures (not registered, wrong protocol version) end the command with their code.
    await worker.ready;
    log.info({ worker: signer.address, coordinator: args.coordinator }, 'connected; waiting for tasks');
    await worker.done;
    await worker.close();
    status(null);
    if (signalled) {
      log.info('stopped');
      process.exit(0);
    }
  },
};

workerSubcommands.push(run as unknown as CommandModule<GlobalArgs, GlobalArgs>);
