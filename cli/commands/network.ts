// `fedtune network create | show`: found a fedtune network on chain, and read one back.
import type { Argv, CommandModule } from 'yargs';
import type { Hex32, NetworkState } from '../../pallet-bindings/index.ts';
import { loadSigner, withSigner, type SignerArgs } from '../keys.ts';
import { withChain, type ChainArgs, type GlobalArgs } from '../options.ts';
import {
  logger,
  networkOf,
  parseAccount,
  parseNetworkId,
  parseQuorum,
  print,
  readState,
  submitChecked,
  usage,
  withClient,
  withNetwork,
  type NetworkArgs,
} from '../protocol.ts';
import { fields, short, table } from '../table.ts';

interface CreateArgs extends GlobalArgs, ChainArgs, SignerArgs {
  name: string;
  member: string[];
  quorum: string;
  'voting-period': number;
  votingPeriod: number;
  coordinator?: string[];
}

const create: CommandModule<GlobalArgs, CreateArgs> = {
  command: 'create',
  describe: 'Create a network: its name, members, quorum, voting period and coordinators',
  builder: (y) =>
    withSigner(withChain(y))
      .option('name', { type: 'string', demandOption: true, describe: 'Network name' })
      .option('member', {
        type: 'string',
        array: true,
        demandOption: true,
        describe: 'Member account (repeat)',
      })
      .option('quorum', {
        type: 'string',
        default: '2/3',
        describe: 'Share of members whose ayes approve: 2/3, 67%, 0.5',
      })
      .option('voting-period', {
        type: 'number',
        default: 10,
        describe: 'Blocks a proposal stays open for votes',
      })
      .option('coordinator', {
        type: 'string',
        array: true,
        describe: 'Coordinator account (repeat; default the signer)',
      }) as unknown as Argv<CreateArgs>,
  async handler(args) {
    const { deriveNetworkId } = await import('../../pallet-bindings/index.ts');
    const log = logger(args);
    const quorum = parseQuorum(args.quorum);
    if (!Number.isInteger(args.votingPeriod) || args.votingPeriod < 1) {
      throw usage(`--voting-period must be a whole number of blocks >= 1, got ${args.votingPeriod}`);
    }
    const members = await Promise.all(args.member.map(parseAccount));
    const signer = await loadSigner(args);
    const coordinators = await Promise.all((args.coordinator ?? [signer.address]).map(parseAccount));
    await withClient(args, log, async (client) => {
      const { inclusion, state } = await submitChecked(client, {
        signer,
        network: null,
        calls: [
          {
            type: 'createNetwork',
            name: args.name,
            members,
            quorum,
            votingPeriod: args.votingPeriod,
            coordinators,
          },
        ],
      });
      const id = deriveNetworkId(inclusion.blockHash, inclusion.extrinsicIndex, 0);
      const net = networkOf(state, id);
      print(args, { network: id, ...inclusion }, () =>
        fields([
          ['network', id],
          ['name', net.name],
          ['block', `${inclusion.blockNumber} (${inclusion.blockHash})`],
          ['extrinsic', inclusion.extrinsicIndex],
          ['next', `export FEDTUNE_NETWORK=${id}`],
        ]),
      );
    });
  },
};

export function describeNetwork(net: NetworkState): string {
  const certified = Object.values(net.checkpoints).filter((c) => c.certified).length;
  return [
    fields([
      ['network', net.id],
      ['name', net.name],
      ['founder', net.founder],
      ['created', `block ${net.createdAt}`],
      ['quorum', `${net.quorum.numerator}/${net.quorum.denominator} of members`],
      ['voting period', `${net.votingPeriod} blocks`],
      ['proposals', `${net.proposals.length} (${net.voting.length} voting)`],
      ['checkpoints', `${Object.keys(net.checkpoints).length} (${certified} certified)`],
    ]),
    '',
    table(
      ['role', 'account'],
      [...net.members.map((m) => ['member', m]), ...net.coordinators.map((c) => ['coordinator', c])],
    ),
    '',
    'datasets',
    table(
      ['root', 'name', 'records', 'shards', 'license', 'owner'],
      Object.values(net.datasets).map((d) => [
        short(d.root),
        d.name,
        d.records,
        d.shards,
        d.license,
        short(d.owner),
      ]),
    ),
    '',
    'workers',
    table(
      ['account', 'backend', 'device', 'memory MB', 'endpoint'],
      Object.values(net.workers).map((w) => [
        w.account,
        w.capabilities.backend,
        w.capabilities.device,
        Math.round(w.capabilities.memoryBytes / 1e6),
        w.endpoint ?? '',
      ]),
    ),
  ].join('\n');
}

const show: CommandModule<GlobalArgs, GlobalArgs & ChainArgs & NetworkArgs & { id?: string }> = {
  command: 'show [id]',
  describe: 'Show a network: members, coordinators, quorum, datasets, workers',
  builder: (y) =>
    withNetwork(withChain(y), false).positional('id', {
      type: 'string',
      describe: 'Network id (default --network / $FEDTUNE_NETWORK)',
    }) as unknown as Argv<GlobalArgs & ChainArgs & NetworkArgs & { id?: string }>,
  async handler(args) {
    const id: Hex32 = parseNetworkId(args.id ?? args.network);
    await withClient(args, logger(args), async (client) => {
      const state = await readState(client, { network: id, from: args.from });
      const net = networkOf(state, id);
      print(args, { height: state.height, network: net }, () => describeNetwork(net));
    });
  },
};

export const networkCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'network',
  describe: 'Create and inspect fedtune networks on chain',
  builder: (y) =>
    y
      .command(create as unknown as CommandModule<GlobalArgs, GlobalArgs>)
      .command(show as unknown as CommandModule<GlobalArgs, GlobalArgs>)
      .demandCommand(1, 'Name a network command: create or show.'),
  handler() {},
};
