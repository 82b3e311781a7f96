// `fedtune round verify`: repeat a finalized round from the chain and its published updates, trusting no source.
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import type { BackendChoice } from '../../model/index.ts';
import type { VerifyReport } from '../../verify/index.ts';
import { BACKEND_CHOICES } from '../choices.ts';
import { FedtuneError } from '../errors.ts';
import { withChain, type ChainArgs, type GlobalArgs } from '../options.ts';
import {
  logger,
  networkOf,
  parseNetworkId,
  print,
  readState,
  usage,
  withClient,
  withNetwork,
  type NetworkArgs,
} from '../protocol.ts';
import { fields, short, table } from '../table.ts';

interface VerifyArgs extends GlobalArgs, ChainArgs, NetworkArgs {
  proposal: number;
  round: number;
  recompute: number;
  source: string[];
  data?: string;
  backend: BackendChoice;
  kernels: 'auto' | 'wasm' | 'js';
  cache?: string;
}

const whole = (name: string, v: unknown, min = 0) => {
  if (!(typeof v === 'number' && Number.isSafeInteger(v) && v >= min))
    throw usage(`--${name} must be a whole number >= ${min}, got ${String(v)}`);
};

/** The report as a table: each step, whether it held, how long it took, what it saw. */
export function describeReport(r: VerifyReport): string {
  const rows = r.steps.map((s) => [
    s.step,
    s.ok ? 'ok' : 'FAILED',
    `${(s.ms / 1000).toFixed(2)} s`,
    s.detail,
  ]);
  const head = fields([
    ['proposal', r.proposal],
    ['round', r.round],
    ['checkpoint', short(r.checkpoint)],
    ['updates', r.updates],
  ]);
  const verdict = r.ok
    ? `VERIFIED in ${r.seconds.toFixed(1)} s: the committed checkpoint is the aggregate of the published updates`
    : `FAILED [${r.code}]${r.culprit ? ` culprit ${r.culprit}` : ''}: ${r.message}`;
  return [head, '', table(['step', 'result', 'time', 'detail'], rows), '', verdict].join('\n');
}

const verify: CommandModule<GlobalArgs, VerifyArgs> = {
  command: 'verify',
  describe:
    "Recompute a finalized round's checkpoint from its published updates and check signatures, rules, rewards and the held-out loss; re-execute contributions with --recompute",
  builder: (y) =>
    withNetwork(withChain(y))
      .option('proposal', { type: 'number', demandOption: true, describe: 'The round proposal' })
      .option('round', { type: 'number', demandOption: true, describe: 'The finalized round (0-based)' })
      .option('recompute', {
        type: 'number',
        default: 0,
        describe:
          "Contributions to re-execute (training the worker's task again and comparing), picked by the hash of the finalizeRound block",
      })
      .option('source', {
        type: 'string',
        array: true,
        default: [] as string[],
        describe:
          "More base URLs serving /rounds, /blobs and /checkpoints (the coordinator's URI on chain is always tried first)",
      })
      .option('data', { type: 'string', describe: 'Local copy of a dataset that is not built in' })
      .option('backend', {
        choices: BACKEND_CHOICES,
        default: 'auto' as BackendChoice,
        describe: 'TensorFlow.js backend for evaluation and re-execution',
      })
      .option('kernels', {
        choices: ['auto', 'wasm', 'js'] as const,
        default: 'auto' as const,
        describe: 'Aggregation kernels (any gives the same bytes)',
      })
      .option('cache', {
        type: 'string',
        describe: 'Where downloaded checkpoints go (default ~/.cache/fedtune/verify)',
      })
      .check((argv) => {
        whole('proposal', argv.proposal);
        whole('round', argv.round);
        whole('recompute', argv.recompute);
        for (const s of argv.source as string[])
          if (!/^https?:\/\/[^\s]+$/.test(s)) throw usage(`--source takes an http(s) base URL, got ${s}`);
        return true;
      })
      .example(
        '$0 round verify --network 0x… --proposal 0 --round 2 --recompute 1',
        "repeat round 2's aggregate and re-run one worker's task",
      ) as unknown as Argv<VerifyArgs>,
  async handler(args) {
    const { initBackend } = await import('../../model/index.ts');
    const { verifyRound, VerifyError } = await import('../../verify/index.ts');
    const { reexecuteContribution } = await import('../../worker/index.ts');
    const network = parseNetworkId(args.network);
    const log = logger(args);
    await initBackend({ backend: args.backend, logger: log });
    const report = await withClient(args, log, async (client) => {
      const net = networkOf(await readState(client, { network, from: args.from }), network);
      try {
        return await verifyRound({
          net,
          network,
          proposal: args.proposal,
          round: args.round,
          blockHash: async (n) => (await client.api.rpc.chain.getBlockHash(n)).toHex(),
          sources: args.source,
          recompute: args.recompute,
          reexecute: reexecuteContribution,
          backend: args.kernels,
          data: args.data,
          cacheDir: resolve(args.cache ?? join(homedir(), '.cache', 'fedtune', 'verify')),
          logger: log,
          onStep: (s) => log.info({ step: s.step, ok: s.ok, ms: Math.round(s.ms) }, s.detail),
        });
      } catch (error) {
        if (error instanceof VerifyError) throw new FedtuneError(error.code, error.message);
        throw error;
      }
    });
    print(args, report, () => describeReport(report));
    if (!report.ok) throw new FedtuneError(report.code!, report.message!);
  },
};

export const roundCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'round',
  describe: 'Finalized rounds: verify one from its published updates',
  builder: (y) => y.command(verify).demandCommand(1, 'Name a round command: verify.'),
  handler() {},
};
