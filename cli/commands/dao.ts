// `fedtune dao propose-round | propose-membership | vote | list | show | dispute | uphold`: the members' governance of a
// network, and their disputes against a round's worker or coordinator.
import type { Argv, CommandModule } from 'yargs';
import type {
  FedtuneCall,
  Hex32,
  KeyringPair,
  ModelRef,
  Proposal,
  ProposeRound,
} from '../../pallet-bindings/index.ts';
import { loadSigner } from '../keys.ts';
import { withChain, type GlobalArgs } from '../options.ts';
import {
  logger,
  networkOf,
  parseAccount,
  parseAmount,
  parseHex32,
  parseNetworkId,
  print,
  readState,
  submitChecked,
  usage,
  withClient,
  withNetwork,
} from '../protocol.ts';
import { fields, short, table } from '../table.ts';
import { positiveInt, withBase, type Base, type Submitting } from './dao-common.ts';
import { disputeTable, dispute, uphold } from './dao-dispute.ts';

/** The proposal a successful propose-* made: the signer's, in the inclusion block. */
function madeBy(proposals: Proposal[], proposer: string, block: number): Proposal {
  const p = proposals.filter((x) => x.proposer === proposer && x.proposedAt === block).at(-1);
  if (p === undefined) throw usage('the proposal landed but is not in the protocol state');
  return p;
}

/**
 * Submits one proposal call and prints the proposal it made: its id, its voting deadline, `more` rows about it and the
 * inclusion block.
 */
async function submitProposal(
  args: Submitting,
  network: Hex32,
  signer: KeyringPair,
  call: FedtuneCall,
  more: (p: Proposal) => [string, string | number][] = () => [],
): Promise<void> {
  await withClient(args, logger(args), async (client) => {
    const { inclusion, state } = await submitChecked(client, { signer, network, calls: [call] }, args.from);
    const p = madeBy(networkOf(state, network).proposals, signer.address, inclusion.blockNumber);
    print(args, { proposal: p.id, deadline: p.deadline, ...inclusion }, () =>
      fields([
        ['proposal', p.id],
        ['voting until', `block ${p.deadline}`],
        ...more(p),
        ['block', inclusion.blockNumber],
      ]),
    );
  });
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
    await submitProposal(args, network, signer, { type: 'proposeRound', ...round }, (p) => [
      ['ayes needed', `${p.ayesNeeded} of ${p.electorate.length}`],
    ]);
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
    await submitProposal(args, network, signer, {
      type: 'proposeMembership',
      action: args.add !== undefined ? 'Add' : 'Remove',
      account,
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
