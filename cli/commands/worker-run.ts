// `fedtune worker run`: the trainer's runtime. Registers the key if needed, connects to a coordinator, trains the tasks it
// is given and uploads signed updates, showing download, training and upload progress.
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { BACKEND_CHOICES, initBackend, type BackendChoice } from '../../model/index.ts';
import { runWorker, type ReceiptChain, type WorkerEvent } from '../../worker/runner.ts';
import type { ProtocolState } from '../../pallet-bindings/index.ts';
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

interface RunArgs extends GlobalArgs, ChainArgs, SignerArgs, Partial<NetworkArgs> {
  coordinator: string;
  data?: string;
  cache: string;
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
          'Network id: with it, the key is registered as a worker first if it is not yet ($FEDTUNE_NETWORK)',
      })
      .option('from', { type: 'number', default: 0, describe: 'First block to read the protocol state from' })
      .option('register', {
        type: 'boolean',
        default: true,
        describe: 'Register on chain when not registered (needs --network); --no-register to only check',
      })
      .option('data', {
        type: 'string',
        describe:
          "Your copy of a dataset that is not built in (folder of .txt or a .jsonl); checked against the chain's root",
      })
      .option('cache', {
        type: 'string',
        default: join(homedir(), '.cache', 'fedtune', 'worker'),
        describe: 'Base checkpoints and receipts (one JSON per round under receipts/)',
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
      ) as unknown as Argv<RunArgs>,
  async handler(args) {
    const log = makeLogger(args);
    const signer = await loadSigner(args);
    const backend = await initBackend({ backend: args.backend, logger: log });
    // With a network: challenges are signed only for its coordinators, and receipts are checked against the chain.
    let expect: { network: string; coordinators: string[] } | undefined;
    let chain: ReceiptChain | undefined;
    if (args.network !== undefined) {
      const network = parseNetworkId(args.network);
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
      cacheDir: resolve(args.cache),
      data: args.data !== undefined ? resolve(args.data) : undefined,
      logger: log,
      onEvent,
      maxTasks: args.maxTasks,
      expect,
      chain,
    });
    const stop = () => void worker.close();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    // Authentication failures (not registered, wrong protocol version) end the command with their code.
    await worker.ready;
    log.info({ worker: signer.address, coordinator: args.coordinator }, 'connected; waiting for tasks');
    await worker.done;
    await worker.close();
    status(null);
  },
};

workerSubcommands.push(run as unknown as CommandModule<GlobalArgs, GlobalArgs>);
