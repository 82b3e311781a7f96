// `fedtune chain state | audit | watch`: the protocol state derived from finalized blocks, its rejected calls, and live changes.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import type { Hex32, ProtocolState } from '../../pallet-bindings/index.ts';
import { withChain, type ChainArgs, type GlobalArgs } from '../options.ts';
import {
  logger,
  parseNetworkId,
  print,
  readState,
  withClient,
  withNetwork,
  type NetworkArgs,
} from '../protocol.ts';
import { FedtuneError } from '../errors.ts';
import { short, table } from '../table.ts';
import { barTable, disputeTable } from './dao-dispute.ts';

type Base = GlobalArgs & ChainArgs & NetworkArgs;

const optionalNetwork = (args: Base): Hex32 | null =>
  args.network === undefined ? null : parseNetworkId(args.network);

function summary(state: ProtocolState) {
  return {
    height: state.height,
    blockHash: state.blockHash,
    networks: Object.values(state.networks).map((n) => ({
      id: n.id,
      name: n.name,
      members: n.members.length,
      coordinators: n.coordinators.length,
      datasets: Object.keys(n.datasets).length,
      workers: Object.keys(n.workers).length,
      proposals: n.proposals.length,
      voting: n.voting.length,
      checkpoints: Object.keys(n.checkpoints).length,
      certified: Object.values(n.checkpoints).filter((c) => c.certified).length,
      disputes: n.disputes.length,
      barred: Object.keys(n.barredWorkers).length + Object.keys(n.barredCoordinators).length,
    })),
    audit: state.audit.length,
    ignored: state.ignored.length,
  };
}

const state: CommandModule<GlobalArgs, Base> = {
  command: 'state',
  describe: 'The protocol state at the finalized head: networks and what they hold (--json: everything)',
  builder: (y) => withNetwork(withChain(y), false) as unknown as Argv<Base>,
  async handler(args) {
    const network = optionalNetwork(args);
    const { ayesNeeded } = await import('../../pallet-bindings/index.ts');
    await withClient(args, logger(args), async (client) => {
      const s = await readState(client, { network, from: args.from });
      const sum = summary(s);
      // Disputes and bars, per network that has any: who is barred, and what is still open.
      const disputes = Object.values(s.networks)
        .filter((n) => n.disputes.length > 0)
        .map(
          (n) =>
            `\ndisputes of ${short(n.id)}\n${disputeTable(n, ayesNeeded)}\n\nbarred in ${short(n.id)}\n${barTable(n)}`,
        );
      print(args, s, () =>
        [
          `finalized block ${s.height} ${s.blockHash ?? ''}`,
          table(
            [
              'network',
              'name',
              'members',
              'datasets',
              'workers',
              'proposals',
              'voting',
              'checkpoints',
              'certified',
              'disputes',
              'barred',
            ],
            sum.networks.map((n) => [
              n.id,
              n.name,
              n.members,
              n.datasets,
              n.workers,
              n.proposals,
              n.voting,
              n.checkpoints,
              n.certified,
              n.disputes,
              n.barred,
            ]),
          ),
          ...disputes,
          `${sum.audit} rejected calls (fedtune chain audit), ${sum.ignored} ignored payloads`,
        ].join('\n'),
      );
    });
  },
};

const audit: CommandModule<GlobalArgs, Base> = {
  command: 'audit',
  describe:
    'Calls the protocol rejected (block, extrinsic, signer, reason), payloads it ignored, "no" attests with their codes, disputes',
  builder: (y) => withNetwork(withChain(y), false) as unknown as Argv<Base>,
  async handler(args) {
    const network = optionalNetwork(args);
    const { ayesNeeded } = await import('../../pallet-bindings/index.ts');
    await withClient(args, logger(args), async (client) => {
      const s = await readState(client, { network, from: args.from });
      // Failed verifications on chain: every "no" attest with its code, oldest first, and the disputes.
      const refused = Object.values(s.networks).flatMap((n) =>
        Object.values(n.checkpoints).flatMap((c) =>
          Object.entries(c.attests)
            .filter(([, a]) => !a.verdict)
            .map(([account, a]) => ({
              network: n.id,
              checkpoint: c.id,
              proposal: c.proposal,
              round: c.round,
              account,
              code: a.code,
              evalLoss: a.evalLoss,
              block: a.block,
            })),
        ),
      );
      refused.sort((x, y) => x.block - y.block);
      const disputes = Object.values(s.networks).flatMap((n) =>
        n.disputes.map((d) => ({ network: n.id, ...d })),
      );
      const json = { height: s.height, rejected: s.audit, ignored: s.ignored, refused, disputes };
      print(args, json, () =>
        [
          'rejected calls',
          table(
            ['block', 'ext', 'call', 'signer', 'network', 'code', 'reason'],
            s.audit.map((a) => [
              a.block,
              a.extrinsic,
              a.callType,
              a.signer ?? '',
              a.network ? short(a.network) : '',
              a.code,
              a.reason,
            ]),
          ),
          '',
          'ignored payloads',
          table(
            ['block', 'ext', 'signer', 'code', 'reason'],
            s.ignored.map((i) => [i.block, i.extrinsic, i.signer ?? '', i.code, i.reason]),
          ),
          '',
          'attested no',
          table(
            ['block', 'network', 'proposal', 'round', 'checkpoint', 'verdict', 'eval loss'],
            refused.map((r) => [
              r.block,
              short(r.network),
              r.proposal,
              r.round,
              r.checkpoint,
              `no: ${r.code ?? '(no code)'} (${short(r.account)})`,
              r.evalLoss,
            ]),
          ),
          ...Object.values(s.networks)
            .filter((n) => n.disputes.length > 0)
            .flatMap((n) => ['', `disputes of ${short(n.id)}`, disputeTable(n, ayesNeeded)]),
        ].join('\n'),
      );
    });
  },
};

interface WatchArgs extends Base {
  snapshot?: string;
  'snapshot-every': number;
  snapshotEvery: number;
}

/** What changed between two states, as one line per change (a person's view of a block). */
function changes(prev: ProtocolState, next: ProtocolState): string[] {
  const out: string[] = [];
  for (const a of next.audit.slice(prev.audit.length))
    out.push(`rejected ${a.callType} by ${short(a.signer ?? '')}: ${a.code} ${a.reason}`);
  for (const n of Object.values(next.networks)) {
    const before = prev.networks[n.id];
    if (!before) out.push(`network ${n.id} "${n.name}" created`);
    for (const p of n.proposals) {
      const old = before?.proposals[p.id];
      if (!old) out.push(`proposal ${p.id} (${p.type}) by ${short(p.proposer)}, voting until ${p.deadline}`);
      else if (old.status !== p.status) out.push(`proposal ${p.id}: ${old.status} → ${p.status}`);
      else if (old.ayes + old.nays !== p.ayes + p.nays)
        out.push(`proposal ${p.id}: ${p.ayes} aye / ${p.nays} nay`);
    }
    // Ids whole: the next command a watcher types (attest, download) takes them.
    for (const c of Object.values(n.checkpoints)) {
      const old = before?.checkpoints[c.id];
      if (!old) out.push(`checkpoint ${c.id} committed (proposal ${c.proposal}, round ${c.round})`);
      else if (!old.certified && c.certified) out.push(`checkpoint ${c.id} certified`);
    }
    for (const w of Object.values(n.workers)) {
      const old = before?.workers[w.account];
      if (!old)
        out.push(`worker ${w.account} registered (${w.capabilities.backend}, ${w.capabilities.device})`);
      else if (JSON.stringify(old) !== JSON.stringify(w))
        out.push(`worker ${w.account} updated its registration`);
    }
    for (const account of Object.keys(before?.workers ?? {}))
      if (n.workers[account] === undefined) out.push(`worker ${account} deregistered`);
    for (const d of Object.values(n.datasets))
      if (before?.datasets[d.root] === undefined) out.push(`dataset ${d.root} "${d.name}" registered`);
    for (const d of n.disputes) {
      const old = before?.disputes[d.id];
      if (!old)
        out.push(
          `dispute ${d.id} against ${d.accused} (${d.code}, round ${d.round} of proposal ${d.proposal}) by ${short(d.disputer)}`,
        );
      else if (Object.keys(old.upholds).length !== Object.keys(d.upholds).length)
        out.push(`dispute ${d.id}: ${Object.keys(d.upholds).length} upholds`);
      if (d.status === 'upheld' && old?.status !== 'upheld') out.push(`dispute ${d.id} upheld`);
    }
    for (const [role, bars, was] of [
      ['worker', n.barredWorkers, before?.barredWorkers],
      ['coordinator', n.barredCoordinators, before?.barredCoordinators],
    ] as const)
      for (const [account, bar] of Object.entries(bars))
        if (was?.[account] === undefined)
          out.push(`${role} ${account} barred by dispute ${bar.dispute} (${bar.code})`);
  }
  return out;
}

const watch: CommandModule<GlobalArgs, WatchArgs> = {
  command: 'watch',
  describe:
    'Follow finalized blocks and print each protocol change (Ctrl-C stops); --snapshot FILE resumes and saves',
  builder: (y) =>
    withNetwork(withChain(y), false)
      .option('snapshot', {
        type: 'string',
        describe: 'Snapshot file: resume from it if still canonical, and keep it updated',
      })
      .option('snapshot-every', {
        type: 'number',
        default: 100,
        describe: 'Blocks between snapshot writes',
      }) as unknown as Argv<WatchArgs>,
  async handler(args) {
    const { encodeSnapshot, follow, initialState, resumeFromSnapshot, syncState } =
      await import('../../pallet-bindings/index.ts');
    const network = optionalNetwork(args);
    const log = logger(args);
    await withClient(args, log, async (client) => {
      let start: ProtocolState | null = null;
      if (args.snapshot !== undefined && existsSync(args.snapshot)) {
        start = await resumeFromSnapshot(client, readFileSync(args.snapshot));
        if (start !== null && start.only !== network) {
          log.warn('snapshot follows another network; replaying instead');
          start = null;
        }
        if (start !== null) log.info({ block: start.height }, 'resumed from snapshot');
      }
      let current = await syncState(client, {
        state: start ?? initialState({ only: network }),
        from: args.from,
      });
      const save = () => {
        if (args.snapshot === undefined || current.blockHash === null) return;
        writeFileSync(`${args.snapshot}.tmp`, encodeSnapshot(current));
        renameSync(`${args.snapshot}.tmp`, args.snapshot);
      };
      save();
      // --json: one JSON object per line (synced, then one per block with changes), for scripts that stream.
      process.stdout.write(
        args.json
          ? `${JSON.stringify({ event: 'synced', ...summary(current) })}\n`
          : `synced to block ${current.height}; watching (Ctrl-C stops)\n`,
      );
      let lastSaved = current.height;
      const stop = await follow(client, {
        state: current,
        onState: (next, block) => {
          const lines = changes(current, next);
          current = next;
          if (args.json) {
            if (lines.length > 0)
              process.stdout.write(
                `${JSON.stringify({ event: 'block', block: block.number, hash: block.hash, changes: lines })}\n`,
              );
          } else for (const line of lines) process.stdout.write(`#${block.number} ${line}\n`);
          if (current.height - lastSaved >= args.snapshotEvery) {
            save();
            lastSaved = current.height;
          }
        },
      });
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await stop();
      save();
    });
  },
};

interface AdvanceArgs extends GlobalArgs, ChainArgs {
  blocks: number;
}

/**
 * Blocks per dev_newBlock request: a block takes about 0.3 s on a quiet machine but up to 3 s on a loaded one, and a
 * request of 20 then outlived the RPC client's 60 s timeout; 4 keeps each request far inside it.
 */
const ADVANCE_BATCH = 4;

const advance: CommandModule<GlobalArgs, AdvanceArgs> = {
  command: 'advance <blocks>',
  describe: 'Dev chains only: build BLOCKS (empty) blocks now, so that voting periods and deadlines pass',
  builder: (y) =>
    withChain(y)
      .positional('blocks', { type: 'number', demandOption: true, describe: 'How many blocks to build' })
      .check((argv) => {
        const n = argv.blocks;
        if (!(Number.isInteger(n) && n >= 1))
          throw new FedtuneError('E_USAGE', `BLOCKS must be a whole number >= 1, got ${n}`, { exitCode: 2 });
        return true;
      })
      .example(
        '$0 chain advance 10',
        'ten blocks on `fedtune devnet`: a voting period of 10 ends',
      ) as unknown as Argv<AdvanceArgs>,
  async handler(args) {
    await withClient(args, logger(args), async (client) => {
      let remaining = args.blocks;
      let hash = '';
      while (remaining > 0) {
        const count = Math.min(remaining, ADVANCE_BATCH);
        try {
          hash = String(await client.api.rpc('dev_newBlock' as never, { count } as never));
        } catch (cause) {
          // A node without chopsticks' dev RPC answers "Method not found" (-32601): real chains make their own time.
          const message = (cause as Error).message ?? String(cause);
          if (/-32601|not found/i.test(message))
            throw new FedtuneError(
              'E_NOT_DEV_CHAIN',
              `${args.chain} has no dev_newBlock method: only a dev chain (fedtune devnet) builds blocks on request; on a real chain wait for its blocks`,
              { cause },
            );
          throw new FedtuneError('E_ADVANCE_FAILED', `dev_newBlock failed on ${args.chain}: ${message}`, {
            cause,
          });
        }
        remaining -= count;
      }
      const header = await client.api.rpc.chain.getHeader(hash);
      const head = { number: header.number.toNumber(), hash };
      print(
        args,
        { built: args.blocks, head },
        () => `built ${args.blocks} block(s); head #${head.number} ${head.hash}`,
      );
    });
  },
};

export const chainCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'chain',
  describe: 'The protocol state derived from the chain: state, audit, watch; advance (dev chains)',
  builder: (y) =>
    y
      .command(state as unknown as CommandModule<GlobalArgs, GlobalArgs>)
      .command(audit as unknown as CommandModule<GlobalArgs, GlobalArgs>)
      .command(watch as unknown as CommandModule<GlobalArgs, GlobalArgs>)
      .command(advance as unknown as CommandModule<GlobalArgs, GlobalArgs>)
      .demandCommand(1, 'Name a chain command: state, audit, watch or advance.'),
  handler() {},
};
