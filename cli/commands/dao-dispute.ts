// `fedtune dao dispute | uphold`: a member puts a failed verification on chain against a round's worker or
// coordinator, and other members uphold it; the tables `dao show` and `chain state` print of disputes and bars.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Argv, CommandModule } from 'yargs';
import type { DisputeRecord, Hex32, NetworkState } from '../../pallet-bindings/index.ts';
import { isHex32 } from '../../merkle/index.ts';
import { FedtuneError } from '../errors.ts';
import { loadSigner } from '../keys.ts';
import type { GlobalArgs } from '../options.ts';
import {
  logger,
  networkOf,
  parseAccount,
  parseFailureCode,
  parseNetworkId,
  print,
  submitChecked,
  usage,
  withClient,
} from '../protocol.ts';
import { fields, short, table } from '../table.ts';
import { positiveInt, withBase, type Submitting } from './dao-common.ts';

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

export const dispute: CommandModule<GlobalArgs, DisputeArgs> = {
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

export const uphold: CommandModule<GlobalArgs, UpholdArgs> = {
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
