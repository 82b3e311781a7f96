// `fedtune coordinator`: runs the approved rounds this key coordinates, serving workers over WebSocket and checkpoints over HTTP.
import { resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import type { CoordinatorEvent } from '../../coordinator/index.ts';
import type { BackendChoice } from '../../model/index.ts';
import { BACKEND_CHOICES } from '../choices.ts';
import { loadSigner, withSigner, type SignerArgs } from '../keys.ts';
import { withChain, type ChainArgs, type GlobalArgs } from '../options.ts';
import { logger as makeLogger, parseNetworkId, usage, withNetwork, type NetworkArgs } from '../protocol.ts';

export const DEFAULT_LISTEN = '127.0.0.1:7300';

interface CoordinatorArgs extends GlobalArgs, ChainArgs, SignerArgs, NetworkArgs {
  listen: string;
  dataDir: string;
  publicUrl?: string;
  data: string[];
  manifestRoot: string[];
  overselect: number;
  parent?: string;
  cohort: number;
  maxRetries: number;
  evalExamples: number;
  keepUpdates: string;
  backend: BackendChoice;
  exitWhenIdle: boolean;
}

/** "host:port" (or ":port", or "[::1]:port") → its parts. */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535))
    throw usage(`--listen takes HOST:PORT (e.g. ${DEFAULT_LISTEN}), got ${value}`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

/** `all` or a whole number of rounds ≥ 1. */
export function parseKeepUpdates(value: string): number | 'all' {
  if (value === 'all') return 'all';
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || !(Number.isSafeInteger(n) && n >= 1))
    throw usage(`--keep-updates takes a number of rounds (1 or more) or all, got ${value}`);
  return n;
}

function parseCohort(n: number): number {
  if (!(Number.isSafeInteger(n) && n >= 1))
    throw usage(`--cohort takes a number of workers (1 or more), got ${n}`);
  return n;
}

function describeEvent(e: CoordinatorEvent): string {
  switch (e.type) {
    case 'openRound':
      return `proposal ${e.proposal} opened in block ${e.blockNumber}`;
    case 'roundStarted':
      return `proposal ${e.proposal} round ${e.round}: ${e.tasks} task(s)${e.resumed ? ' (resumed from the journal)' : ''}, deadline ${new Date(e.deadlineMs).toISOString()}`;
    case 'taskSent':
      return `  task to ${e.account} (shards ${e.shards.join(',')})`;
    case 'taskHandedOn':
      return `  task of ${e.from} handed on [${e.reason}]`;
    case 'updateAccepted':
      return `  update from ${e.account}: ${e.samples} samples, ${(e.bytes / 1e6).toFixed(2)} MB`;
    case 'updateRejected':
      return `  update from ${e.account} rejected [${e.code}]: ${e.message}`;
    case 'roundRetried':
      return `proposal ${e.proposal} round ${e.round}: only ${e.accepted} update(s); retry ${e.attempt}`;
    case 'roundClosed':
      return `proposal ${e.proposal} round ${e.round}: ${e.accepted} update(s) aggregated in ${e.aggregationMs.toFixed(0)} ms, eval loss ${e.evalLoss.toFixed(4)}${e.baseEvalLoss !== null ? ` (base ${e.baseEvalLoss.toFixed(4)})` : ''}`;
    case 'finalizeRound':
      return `proposal ${e.proposal} round ${e.round} committed in block ${e.blockNumber}: checkpoint ${e.checkpointId}, ${e.rewards.length} reward(s)`;
    case 'failRound':
      return `proposal ${e.proposal} failed: ${e.reason}`;
    case 'cohortSubmitted':
      return `proposal ${e.proposal} round ${e.round}: cohort of ${e.members} worker(s), ${e.samples} samples, final in checkpoint ${e.checkpointId}; receipts sent`;
  }
}

export const coordinatorCommand: CommandModule<GlobalArgs, CoordinatorArgs> = {
  command: 'coordinator',
  describe:
    'Run the approved training rounds this key coordinates: tasks to workers, validated and journaled updates, aggregation, checkpoints, on-chain commits',
  builder: (y) =>
    withSigner(withNetwork(withChain(y)))
      .option('listen', {
        type: 'string',
        default: DEFAULT_LISTEN,
        describe: 'HOST:PORT for workers (WebSocket) and HTTP (/health, /metrics, /checkpoints, /datasets)',
      })
      .option('data-dir', {
        type: 'string',
        default: '.fedtune/coordinator',
        describe: 'Journal and checkpoint store; restart with the same folder to resume',
      })
      .option('public-url', {
        type: 'string',
        describe: 'HTTP base URL others reach this coordinator at (committed on chain with each checkpoint)',
      })
      .option('data', {
        type: 'string',
        array: true,
        default: [] as string[],
        describe: 'ROOT_OR_NAME=PATH: local data for a dataset that is not built in (repeatable)',
      })
      .option('manifest-root', {
        type: 'string',
        array: true,
        default: [] as string[],
        describe:
          "A folder a dataset's local (file://) manifest URI must lie under (repeatable); without one, any local file is read",
      })
      .option('parent', {
        type: 'string',
        describe:
          "Run as a sub-coordinator of the coordinator at this ws:// URL: take part in its rounds with this key's cohort of workers (docs/rounds.md, 'Hierarchical rounds')",
      })
      .option('cohort', {
        type: 'number',
        default: 8,
        describe: 'With --parent: the most workers of this cohort per round',
      })
      .option('overselect', {
        type: 'number',
        default: 0.25,
        describe: 'Extra tasks beyond maxWorkers, as a fraction, to absorb dropouts',
      })
      .option('max-retries', {
        type: 'number',
        default: 2,
        describe: 'New deadlines for a round short of minWorkers before the proposal is failed on chain',
      })
      .option('eval-examples', {
        type: 'number',
        default: 256,
        describe: 'Held-out examples scored after each round (evenly spaced over the eval split)',
      })
      .option('keep-updates', {
        type: 'string',
        default: 'all',
        describe:
          "How many of a proposal's latest rounds keep their accepted update payloads published at /blobs (ROUNDS or all): `round verify` needs them",
      })
      .option('backend', {
        choices: BACKEND_CHOICES,
        default: 'auto' as BackendChoice,
        describe: 'TensorFlow.js backend for evaluation (auto: tensorflow if installed, else wasm)',
      })
      .option('exit-when-idle', {
        type: 'boolean',
        default: false,
        describe: 'Exit once no proposal this key coordinates is approved or open',
      })
      .check((argv) => {
        parseListen(argv.listen);
        if (!(argv.overselect >= 0 && argv.overselect <= 4)) throw usage('--overselect must be in [0, 4]');
        const maxRetries = argv.maxRetries as number;
        const evalExamples = argv.evalExamples as number;
        if (!(Number.isInteger(maxRetries) && maxRetries >= 0))
          throw usage('--max-retries must be a whole number');
        if (!(Number.isInteger(evalExamples) && evalExamples >= 1))
          throw usage('--eval-examples must be a positive whole number');
        parseKeepUpdates(String(argv.keepUpdates));
        for (const d of argv.data)
          if (!/^[^=]+=.+$/.test(d)) throw usage(`--data takes ROOT_OR_NAME=PATH, got ${d}`);
        return true;
      })
      .example(
        '$0 coordinator --seed //Ferdie --network 0x… --listen 127.0.0.1:7300',
        'coordinate the network on the local devnet',
      ) as unknown as Argv<CoordinatorArgs>,
  async handler(args) {
    const { startCoordinator } = await import('../../coordinator/index.ts');
    const { initBackend } = await import('../../model/index.ts');
    const { connect } = await import('../../pallet-bindings/index.ts');
    const network = parseNetworkId(args.network);
    const { host, port } = parseListen(args.listen);
    const log = makeLogger(args);
    const signer = await loadSigner(args);
    await initBackend({ backend: args.backend, logger: log });
    const chain = await connect({ url: args.chain, logger: log });
    const data = Object.fromEntries(
      args.data.map((d) => {
        const at = d.indexOf('=');
        return [d.slice(0, at), resolve(d.slice(at + 1))];
      }),
    );
    const coordinator = await startCoordinator({
      chain,
      signer,
      network,
      dataDir: resolve(args.dataDir),
      host,
      port,
      publicUrl: args.publicUrl,
      data,
      manifestRoots: args.manifestRoot.length > 0 ? args.manifestRoot.map((d) => resolve(d)) : undefined,
      from: args.from,
      overselect: args.overselect,
      parent: args.parent !== undefined ? { url: args.parent, cohort: parseCohort(args.cohort) } : undefined,
      maxRetries: args.maxRetries,
      evalExamples: args.evalExamples,
      keepUpdates: parseKeepUpdates(args.keepUpdates),
      logger: log,
      onEvent: (e) => {
        if (args.json) process.stdout.write(`${JSON.stringify(e)}\n`);
        else if (e.type !== 'taskSent') log.info({ event: e.type }, describeEvent(e));
      },
    });
    const stopped = new Promise<void>((resolveStop) => {
      const stop = (signal: string) => {
        log.info({ signal }, 'stopping');
        // Whatever the chain or a step is doing, the process is gone within 3 s: the journal holds what was acknowledged.
        setTimeout(() => {
          log.warn('stopped before the current step finished; a restart resumes it from the journal');
          resolveStop();
        }, 3000).unref();
        coordinator
          .close()
          .then(() => chain.close())
          .then(resolveStop, (error: unknown) => {
            log.error({ err: error }, 'unclean stop');
            resolveStop();
          });
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
      if (args.exitWhenIdle) void coordinator.idle().then(() => stop('idle'));
    });
    const ready = {
      type: 'ready',
      url: coordinator.url,
      httpUrl: coordinator.httpUrl,
      coordinator: signer.address,
      network,
      dataDir: resolve(args.dataDir),
    };
    if (args.json) process.stdout.write(`${JSON.stringify(ready)}\n`);
    else
      process.stdout.write(
        [
          `fedtune coordinator ${signer.address}`,
          `  workers:     ${coordinator.url}`,
          `  http:        ${coordinator.httpUrl} (/health, /metrics, /checkpoints)`,
          `  network:     ${network}`,
          `  data:        ${ready.dataDir}`,
          '  Ctrl-C stops it; restart with the same --data-dir to resume.',
          '',
        ].join('\n'),
      );
    await stopped;
  },
};
