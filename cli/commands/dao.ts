// `fedtune dao propose-round | propose-membership | vote | list | show | dispute | uphold`: the members' governance of a
// network, and their disputes against a round's worker or coordinator.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Argv, CommandModule } from 'yargs';
import type {
  DisputeRecord,
  Hex32,
  ModelRef,
  NetworkState,
  Proposal,
  ProposeRound,
} from '../../pallet-bindings/index.ts';
import { isHex32 } from '../../merkle/index.ts';
import { FedtuneError } from '../errors.ts';
import { loadSigner, withSigner, type SignerArgs } from '../keys.ts';
import { withChain, type ChainArgs, type GlobalArgs } from '../options.ts';
import {
  logger,
  networkOf,
  parseAccount,
  parseAmount,
  parseHex32,
  parseFailureCode,
  parseNetworkId,
  print,
  readState,
  submitChecked,
  usage,
  withClient,
  withNetwork,
  type NetworkArgs,
} from '../protocol.ts';
import { fields, short, table } from '../table.ts';

type Base = GlobalArgs & ChainArgs & NetworkArgs;
type Submitting = Base & SignerArgs;

function withBase<T>(y: Argv<T>, signing: boolean): Argv<T & Submitting> {
  const withNet = withNetwork(withChain(y));
  return (signing ? withSigner(withNet) : withNet) as unknown as Argv<T & Submitting>;
}

/** The proposal a successful propose-* made: the signer's, in the inclusion block. */
function madeBy(proposals: Proposal[], proposer: string, block: number): Proposal {
  const p = proposals.filter((x) => x.proposer === proposer && x.proposedAt === block).at(-1);
  if (p === undefined) throw usage('the proposal landed but is not in the protocol state');
  return p;
}

interface ProposeRoundArgs extends Submitting {
  kind: 'pretrain' | 'finetune';
  base?: string;
  dataset: string;
  'model-config'?: string;
  modelConfig?: string;
  'model-hash'?: string;
  modelHash?: string;
  rounds: number;
  minWorkers: number;
  maxWorkers: number;
  roundDeadline: number;
  reward: string;
  localSteps: number;
  batchSize: number;
  lr: number;
  optimiser: string;
  fedProxMu: number;
  aggregator: string;
  aggregatorOptions: string;
  updateEncoding: string;
}

const positiveInt = (name: string, v: number, min = 1) => {
  if (!Number.isInteger(v) || v < min || v > 0xffffffff)
    throw usage(`--${name} must be a whole number >= ${min}, got ${v}`);
  return v;
};

const proposeRound: CommandModule<GlobalArgs, ProposeRoundArgs> = {
  command: 'propose-round',
  describe: 'Propose a training round (members only)',
  builder: (y) =>
    withBase(y, true)
      .option('kind', { choices: ['pretrain', 'finetune'] as const, default: 'pretrain' as const })
      .option('base', { type: 'string', describe: 'Finetune: the certified checkpoint id to start from' })
      .option('dataset', { type: 'string', demandOption: true, describe: 'Registered dataset root (0x…)' })
      .option('model-config', { type: 'string', describe: 'Model architecture config (JSON text)' })
      .option('model-hash', { type: 'string', describe: 'Or: the hash of the model config (0x…)' })
      .option('rounds', { type: 'number', default: 1 })
      .option('min-workers', { type: 'number', default: 1 })
      .option('max-workers', { type: 'number', default: 16 })
      .option('round-deadline', { type: 'number', default: 600, describe: 'Seconds per round off chain' })
      .option('reward', { type: 'string', default: '0', describe: 'Planck paid per round in total' })
      .option('local-steps', { type: 'number', default: 10 })
      .option('batch-size', { type: 'number', default: 8 })
      .option('lr', { type: 'number', default: 0.001, describe: 'Learning rate' })
      .option('optimiser', { alias: 'optimizer', type: 'string', default: 'adamw' })
      .option('fed-prox-mu', {
        alias: 'mu',
        type: 'number',
        default: 0,
        describe: 'FedProx mu, the proximal term (0: plain FedAvg)',
      })
      .option('aggregator', { type: 'string', default: 'fedavg' })
      .option('aggregator-options', { type: 'string', default: '{}', describe: 'Aggregator options (JSON)' })
      .option('update-encoding', {
        alias: 'encoding',
        type: 'string',
        default: 'dense',
        describe: 'Update encoding: dense, int8, topk',
      })
      .conflicts('model-config', 'model-hash') as unknown as Argv<ProposeRoundArgs>,
  async handler(args) {
    const network = parseNetworkId(args.network);
    let model: ModelRef;
    if (args.modelHash !== undefined) model = { hash: parseHex32('--model-hash', args.modelHash) };
    else if (args.modelConfig !== undefined) {
      try {
        JSON.parse(args.modelConfig);
      } catch {
        throw usage('--model-config must be JSON text');
      }
      model = { config: args.modelConfig };
    } else throw usage('name the model: --model-config JSON or --model-hash 0x…');
    for (const [name, v] of [
      ['lr', args.lr],
      ['fed-prox-mu', args.fedProxMu],
    ] as const) {
      if (!Number.isFinite(v) || v < 0) throw usage(`--${name} must be a number >= 0, got ${v}`);
    }
    const round: ProposeRound = {
      kind: args.kind === 'finetune' ? 'Finetune' : 'Pretrain',
      baseCheckpoint: args.base === undefined ? null : parseHex32('--base', args.base),
      dataset: parseHex32('--dataset', args.dataset),
      model,
      hyperParams: {
        localSteps: positiveInt('local-steps', args.localSteps),
        batchSize: positiveInt('batch-size', args.batchSize),
        learningRate: args.lr,
        optimiser: args.optimiser,
        fedProxMu: args.fedProxMu,
        aggregator: args.aggregator,
        aggregatorOptions: args.aggregatorOptions,
        updateEncoding: args.updateEncoding,
      },
      rounds: positiveInt('rounds', args.rounds),
      minWorkers: positiveInt('min-workers', args.minWorkers),
      maxWorkers: positiveInt('max-workers', args.maxWorkers),
      roundDeadline: positiveInt('round-deadline', args.roundDeadline),
      rewardPerRound: parseAmount('--reward', args.reward),
    };
    if (round.kind === 'Finetune' && round.baseCheckpoint === null)
      throw usage('--kind finetune needs --base CHECKPOINT');
    const signer = await loadSigner(args);
    await withClient(args, logger(args), async (client) => {
      const { inclusion, state } = await submitChecked(
        client,
        { signer, network, calls: [{ type: 'proposeRound', ...round }] },
        args.from,
      );
      const p = madeBy(networkOf(state, network).proposals, signer.address, inclusion.blockNumber);
      print(args, { proposal: p.id, deadline: p.deadline, ...inclusion }, () =>
        fields([
          ['proposal', p.id],
          ['voting until', `block ${p.deadline}`],
          ['ayes needed', `${p.ayesNeeded} of ${p.electorate.length}`],
          ['block', inclusion.blockNumber],
        ]),
      );
    });
  },
};

interface ProposeMembershipArgs extends Submitting {
  add?: string;
  remove?: string;
}

const proposeMembership: CommandModule<GlobalArgs, ProposeMembershipArgs> = {
  command: 'propose-membership',
  aliases: ['propose-member'],
  describe: 'Propose adding or removing a member (members only)',
  builder: (y) =>
    withBase(y, true)
      .option('add', { type: 'string', describe: 'Account to admit' })
      .option('remove', { type: 'string', describe: 'Member to remove' })
      .conflicts('add', 'remove') as unknown as Argv<ProposeMembershipArgs>,
  async handler(args) {
    const network = parseNetworkId(args.network);
    const target = args.add ?? args.remove;
    if (target === undefined) throw usage('name the change: --add ACCOUNT or --remove ACCOUNT');
    const account = await parseAccount(target);
    const signer = await loadSigner(args);
    await withClient(args, logger(args), async (client) => {
      const { inclusion, state } = await submitChecked(
        client,
        {
          signer,
          network,
          calls: [{ type: 'proposeMembership', action: args.add !== undefined ? 'Add' : 'Remove', account }],
        },
        args.from,
      );
      const p = madeBy(networkOf(state, network).proposals, signer.address, inclusion.blockNumber);
      print(args, { proposal: p.id, deadline: p.deadline, ...inclusion }, () =>
        fields([
          ['proposal', p.id],
          ['voting until', `block ${p.deadline}`],
          ['block', inclusion.blockNumber],
        ]),
      );
    });
  },
};

interface VoteArgs extends Submitting {
  proposal: number;
  choice: 'aye' | 'nay';
}

const vote: CommandModule<GlobalArgs, VoteArgs> = {
  command: 'vote <proposal> <choice>',
  describe: 'Vote aye or nay on a proposal (members at proposing time, once, before the deadline)',
  builder: (y) =>
    withBase(y, true)
      .positional('proposal', { type: 'number', demandOption: true, describe: 'Proposal id' })
      .positional('choice', {
        choices: ['aye', 'nay'] as const,
        demandOption: true,
      }) as unknown as Argv<VoteArgs>,
  async handler(args) {
    const network = parseNetworkId(args.network);
    const proposal = positiveInt('proposal', args.proposal, 0);
    const signer = await loadSigner(args);
    await withClient(args, logger(args), async (client) => {
      const { inclusion, state } = await submitChecked(
        client,
        { signer, network, calls: [{ type: 'vote', proposal, aye: args.choice === 'aye' }] },
        args.from,
      );
      const p = networkOf(state, network).proposals[proposal]!;
      print(
        args,
        { proposal, aye: args.choice === 'aye', ayes: p.ayes, nays: p.nays, ...inclusion },
        () =>
          `voted ${args.choice} on proposal ${proposal} in block ${inclusion.blockNumber}: ${p.ayes} aye / ${p.nays} nay, ${p.ayesNeeded} ayes needed; ` +
          // The reducer decides at the end of the voting period, not when the quorum is reached.
          `the outcome is decided at block ${p.deadline}, when the voting period ends (\`fedtune dao show ${proposal}\`)`,
      );
    });
  },
};

function subject(p: Proposal): string {
  if (p.type === 'membership') return `${p.membership.action.toLowerCase()} ${short(p.membership.account)}`;
  const r = p.round;
  return `${r.kind.toLowerCase()} ${r.rounds}x on ${short(r.dataset)}${r.baseCheckpoint ? ` from ${short(r.baseCheckpoint)}` : ''}`;
}

const list: CommandModule<GlobalArgs, Base> = {
  command: 'list',
  describe: 'List the proposals of a network',
  builder: (y) => withNetwork(withChain(y)) as unknown as Argv<Base>,
  async handler(args) {
    const network = parseNetworkId(args.network);
    await withClient(args, logger(args), async (client) => {
      const state = await readState(client, { network, from: args.from });
      const proposals = networkOf(state, network).proposals;
      print(
        args,
        { height: state.height, proposals },
        () =>
          table(
            ['id', 'type', 'subject', 'status', 'ayes', 'nays', 'needed', 'deadline', 'proposer'],
            proposals.map((p) => [
              p.id,
              p.type,
              subject(p),
              p.status,
              p.ayes,
              p.nays,
              p.ayesNeeded,
              p.deadline,
              short(p.proposer),
            ]),
          ) + `\n(at block ${state.height})`,
      );
    });
  },
};

/**
 * The status with the one block it happened in: the decision for approved/rejected, the failRound for failed, the last
 * finalizeRound for completed, the openRound's decision otherwise (the voting outcome has its own line).
 */
function statusLine(p: Proposal): string {
  if (p.type === 'round' && p.status === 'failed' && p.failure) return `failed at block ${p.failure.block}`;
  if (p.type === 'round' && p.status === 'completed' && p.finalized.length > 0)
    return `completed at block ${p.finalized.at(-1)!.block}`;
  if (p.status === 'voting') return `voting until block ${p.deadline}`;
  if ((p.status === 'approved' || p.status === 'rejected') && p.decidedAt !== null)
    return `${p.status} at block ${p.decidedAt}`;
  return p.status;
}

const show: CommandModule<GlobalArgs, Base & { proposal: number }> = {
  command: 'show <proposal>',
  describe: 'Show one proposal: its terms, votes and outcome, and disputes against its rounds',
  builder: (y) =>
    withNetwork(withChain(y)).positional('proposal', {
      type: 'number',
      demandOption: true,
    }) as unknown as Argv<Base & { proposal: number }>,
  async handler(args) {
    const network = parseNetworkId(args.network);
    const { ayesNeeded } = await import('../../pallet-bindings/index.ts');
    await withClient(args, logger(args), async (client) => {
      const state = await readState(client, { network, from: args.from });
      const p = networkOf(state, network).proposals[args.proposal];
      if (p === undefined)
        throw usage(
          `no proposal ${args.proposal} (the network has ${networkOf(state, network).proposals.length})`,
        );
      print(args, p, () => {
        const head: [string, string | number][] = [
          ['proposal', p.id],
          ['type', p.type],
          ['status', statusLine(p)],
          ['proposer', p.proposer],
          [
            'proposed',
            `block ${p.proposedAt}, voting until block ${p.deadline}` +
              (p.decidedAt !== null
                ? `; ${p.status === 'rejected' ? 'rejected' : 'approved'} at block ${p.decidedAt}`
                : ''),
          ],
          ['tally', `${p.ayes} aye, ${p.nays} nay; ${p.ayesNeeded} of ${p.electorate.length} ayes needed`],
        ];
        if (p.type === 'membership') {
          head.push(
            ['change', `${p.membership.action} ${p.membership.account}`],
            ['applied', String(p.applied)],
          );
        } else {
          const r = p.round;
          head.push(
            ['kind', r.kind],
            ['base', r.baseCheckpoint ?? '(none)'],
            ['dataset', r.dataset],
            ['model', 'config' in r.model ? r.model.config : `hash ${r.model.hash}`],
            ['hyper-params', JSON.stringify(r.hyperParams)],
            ['rounds', `${p.finalized.length}/${r.rounds} finalized`],
            ['workers', `${r.minWorkers}..${r.maxWorkers}`],
            ['reward/round', `${r.rewardPerRound} planck`],
            [
              'coordinator',
              p.coordinator === null ? '(not open)' : `${p.coordinator} at ${p.coordinatorEndpoint}`,
            ],
          );
          if (p.failure) head.push(['reason', p.failure.reason]);
        }
        const votes = table(
          ['voter', 'vote'],
          Object.entries(p.votes).map(([a, aye]) => [a, aye ? 'aye' : 'nay']),
        );
        const rounds =
          p.type === 'round'
            ? '\n\nrounds\n' +
              table(
                ['round', 'train loss', 'eval loss', 'contributors', 'rewards', 'block', 'checkpoint'],
                p.finalized.map((f) => [
                  f.round,
                  f.metrics.trainLoss,
                  f.metrics.evalLoss,
                  f.contributors.length,
                  f.rewards.length,
                  f.block,
                  f.checkpoint.id,
                ]),
              )
            : '';
        const disputes =
          p.type === 'round'
            ? `\n\ndisputes\n${disputeTable(networkOf(state, network), ayesNeeded, (d) => d.proposal === p.id)}`
            : '';
        return `${fields(head)}\n\nvotes\n${votes}${rounds}${disputes}`;
      });
    });
  },
};

// ---- disputes -------------------------------------------------------------------------------------

/**
 * Upholds by current members, and how many the quorum needs now (the reducer's rule, docs/protocol.md); `ayesNeeded`
 * is pallet-bindings', passed in because that module loads only when a command runs.
 */
function upholdCount(
  net: NetworkState,
  d: DisputeRecord,
  ayesNeeded: AyesNeeded,
): { upholds: number; needed: number } {
  const upholds = Object.keys(d.upholds).filter((a) => net.members.includes(a)).length;
  return { upholds, needed: ayesNeeded(net.quorum, net.members.length) };
}

type AyesNeeded = (quorum: NetworkState['quorum'], members: number) => number;

/** What became of a dispute: open with its count, or upheld and the bars it made. */
function disputeStatus(net: NetworkState, d: DisputeRecord, ayesNeeded: AyesNeeded): string {
  const { upholds, needed } = upholdCount(net, d, ayesNeeded);
  if (d.status === 'open') return `open, ${upholds} of ${needed} upholds`;
  const bars = d.roles.filter((role) => {
    const bar = (role === 'worker' ? net.barredWorkers : net.barredCoordinators)[d.accused];
    return bar?.dispute === d.id;
  });
  return `upheld at block ${d.upheldAt}${bars.length > 0 ? `: ${bars.join(' and ')} barred` : ' (barred already)'}`;
}

/** The disputes of a network (those `which` keeps) as a table. */
export function disputeTable(
  net: NetworkState,
  ayesNeeded: AyesNeeded,
  which: (d: DisputeRecord) => boolean = () => true,
): string {
  return table(
    ['id', 'proposal', 'round', 'accused', 'as', 'code', 'by', 'status', 'evidence'],
    net.disputes
      .filter(which)
      .map((d) => [
        d.id,
        d.proposal,
        d.round,
        d.accused,
        d.roles.join('+'),
        d.code,
        short(d.disputer),
        disputeStatus(net, d, ayesNeeded),
        short(d.evidence),
      ]),
  );
}

/** The bars of a network, workers then coordinators, as a table. */
export function barTable(net: NetworkState): string {
  const rows = (['worker', 'coordinator'] as const).flatMap((role) =>
    Object.entries(role === 'worker' ? net.barredWorkers : net.barredCoordinators).map(([account, bar]) => [
      account,
      role,
      bar.dispute,
      bar.code,
      bar.block,
    ]),
  );
  return table(['account', 'barred as', 'dispute', 'code', 'block'], rows);
}

/** A whole number >= 0 that fits a u32, or E_USAGE. */
const index = (name: string, v: number) => positiveInt(name, v, 0);

/** --evidence: a 0x hash as it is, or a file's sha-256 (E_EVIDENCE_UNREADABLE when it cannot be read). */
async function parseEvidence(value: string): Promise<{ evidence: Hex32; file: string | null }> {
  if (isHex32(value.toLowerCase())) return { evidence: value.toLowerCase() as Hex32, file: null };
  let bytes: Buffer;
  try {
    bytes = await readFile(value);
  } catch (cause) {
    throw new FedtuneError(
      'E_EVIDENCE_UNREADABLE',
      `--evidence must be a file (its sha-256 goes on chain) or 0x + 64 hex digits; cannot read ${JSON.stringify(value)}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`,
      { exitCode: 2, cause },
    );
  }
  return { evidence: `0x${createHash('sha256').update(bytes).digest('hex')}` as Hex32, file: value };
}

interface DisputeArgs extends Submitting {
  proposal: number;
  round: number;
  accused: string;
  code: string;
  evidence: string;
}

const dispute: CommandModule<GlobalArgs, DisputeArgs> = {
  command: 'dispute',
  describe:
    "Put a failed verification on chain against a round's worker or coordinator (members); upheld by a quorum, it bars the accused",
  builder: (y) =>
    withBase(y, true)
      .option('proposal', { type: 'number', demandOption: true, describe: 'Round proposal id' })
      .option('round', { type: 'number', demandOption: true, describe: 'Finalized round (0-based)' })
      .option('accused', {
        type: 'string',
        demandOption: true,
        describe: 'A contributor of that round, or the coordinator that finalized it (SS58 or 0x key)',
      })
      .option('code', {
        type: 'string',
        demandOption: true,
        describe: 'The failed check: E_WORK_MISMATCH, E_AGGREGATE_MISMATCH, … (A-Z, 0-9, _; at most 32)',
      })
      .option('evidence', {
        type: 'string',
        demandOption: true,
        describe:
          'The evidence: a file (e.g. the `round verify --json` report; its sha-256 goes on chain) or 0x + 64 hex',
      })
      .example(
        '$0 dao dispute --seed //Bob --proposal 0 --round 1 --accused 5DAAnrj… --code E_WORK_MISMATCH --evidence verify.json',
        'accuse a worker of round 1 of proposal 0',
      ) as unknown as Argv<DisputeArgs>,
  async handler(args) {
    const network = parseNetworkId(args.network);
    const proposal = index('proposal', args.proposal);
    const round = index('round', args.round);
    const accused = await parseAccount(args.accused);
    const code = await parseFailureCode(args.code);
    const { evidence, file } = await parseEvidence(args.evidence);
    const { ayesNeeded } = await import('../../pallet-bindings/index.ts');
    const signer = await loadSigner(args);
    await withClient(args, logger(args), async (client) => {
      const { inclusion, state } = await submitChecked(
        client,
        { signer, network, calls: [{ type: 'dispute', proposal, round, accused, code, evidence }] },
        args.from,
      );
      const net = networkOf(state, network);
      const d = net.disputes
        .filter((x) => x.disputer === signer.address && x.openedAt === inclusion.blockNumber)
        .at(-1);
      if (d === undefined) throw usage('the dispute landed but is not in the protocol state');
      const { upholds, needed } = upholdCount(net, d, ayesNeeded);
      print(args, { dispute: d.id, status: d.status, upholds, needed, evidence, ...inclusion }, () =>
        fields([
          ['dispute', d.id],
          ['accused', `${d.accused} (${d.roles.join(' and ')} of round ${round} of proposal ${proposal})`],
          ['code', code],
          ['evidence', file === null ? evidence : `${evidence} (sha-256 of ${file})`],
          ['status', disputeStatus(net, d, ayesNeeded)],
          ['block', inclusion.blockNumber],
          ...(d.status === 'open'
            ? ([['next', `other members: fedtune dao uphold --dispute ${d.id}`]] as [string, string][])
            : []),
        ]),
      );
    });
  },
};

interface UpholdArgs extends Submitting {
  dispute: number;
}

const uphold: CommandModule<GlobalArgs, UpholdArgs> = {
  command: 'uphold',
  describe: "Uphold a member's dispute (members, once each); at the quorum the accused is barred",
  builder: (y) =>
    withBase(y, true).option('dispute', {
      type: 'number',
      demandOption: true,
      describe: 'Dispute id (`fedtune dao show PROPOSAL` lists them)',
    }) as unknown as Argv<UpholdArgs>,
  async handler(args) {
    const network = parseNetworkId(args.network);
    const id = index('dispute', args.dispute);
    const { ayesNeeded } = await import('../../pallet-bindings/index.ts');
    const signer = await loadSigner(args);
    await withClient(args, logger(args), async (client) => {
      const { inclusion, state } = await submitChecked(
        client,
        { signer, network, calls: [{ type: 'upholdDispute', dispute: id }] },
        args.from,
      );
      const net = networkOf(state, network);
      const d = net.disputes[id]!;
      const { upholds, needed } = upholdCount(net, d, ayesNeeded);
      print(args, { dispute: id, status: d.status, upholds, needed, ...inclusion }, () =>
        fields([
          ['dispute', id],
          ['accused', d.accused],
          ['status', disputeStatus(net, d, ayesNeeded)],
          ['block', inclusion.blockNumber],
        ]),
      );
    });
  },
};

export const daoCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'dao',
  describe:
    'Governance: propose rounds and membership changes, vote, list and show proposals, dispute and uphold',
  builder: (y) =>
    y
      .command(proposeRound as unknown as CommandModule<GlobalArgs, GlobalArgs>)
      .command(proposeMembership as unknown as CommandModule<GlobalArgs, GlobalArgs>)
      .command(vote as unknown as CommandModule<GlobalArgs, GlobalArgs>)
      .command(list as unknown as CommandModule<GlobalArgs, GlobalArgs>)
      .command(show as unknown as CommandModule<GlobalArgs, GlobalArgs>)
      .command(dispute as unknown as CommandModule<GlobalArgs, GlobalArgs>)
      .command(uphold as unknown as CommandModule<GlobalArgs, GlobalArgs>)
      .demandCommand(
        1,
        'Name a dao command: propose-round, propose-membership, vote, list, show, dispute or uphold.',
      ),
  handler() {},
};
