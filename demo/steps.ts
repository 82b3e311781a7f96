// The demo's steps through the chain and the `fedtune` CLI, over one run's chain, network and output folder: read the
// protocol state, propose and vote, wait for a proposal, certify, verify a round, generate.
import type { Devnet } from '../devchain/index.ts';
import {
  initialState,
  syncState,
  type ChainClient,
  type Hex32,
  type ProtocolState,
  type RoundProposal,
} from '../pallet-bindings/index.ts';
import { join } from 'node:path';
import { DEMO_DEFAULTS } from './defaults.ts';
import { DemoError, fedtune, json, runInProcess, stepFailed, until } from './process.ts';
import { PLANCK_PER_ROC } from './setup.ts';
import type { DemoSample, VerifiedRound } from './summary.ts';

/** What the steps act on: the run's chain, its network, its output folder and the settings every round shares. */
export interface DemoRun {
  client: ChainClient;
  devnet: Devnet;
  network: Hex32;
  /** The flags every `fedtune` command on the network runs with: `--chain URL --network ID`. */
  netFlags: readonly string[];
  out: string;
  evalExamples: number;
  workers: number;
  batchSize?: number;
}

export type DemoSteps = ReturnType<typeof demoSteps>;

export function demoSteps(run: DemoRun) {
  const { client, devnet, network, netFlags, out, evalExamples } = run;
  let known: ProtocolState | undefined;
  return {
    readState,
    propose,
    roundArgs,
    roundProposal,
    waitCompleted,
    lastCheckpoint,
    verifyLast,
    certify,
    generateFrom,
  };

  /** The state at the finalized head, folded on from the last one read (polls would otherwise replay the chain). */
  async function readState() {
    const only = network === '0x' ? null : network;
    known = await syncState(client, { state: known?.only === only ? known : initialState({ only }) });
    return known;
  }

  /** The round settings of a proposal: rounds, workers, deadline, reward (in ROC), local steps, batch size, lr. */
  function roundArgs(rounds: number, reward: bigint, steps: number, lr: number): string[] {
    return ['--rounds', String(rounds), '--min-workers', String(Math.min(2, run.workers))].concat(
      ['--max-workers', String(run.workers), '--round-deadline', '600'],
      ['--reward', String(reward * PLANCK_PER_ROC), '--local-steps', String(steps)],
      ['--batch-size', String(run.batchSize ?? DEMO_DEFAULTS.batchSize), '--lr', String(lr)],
    );
  }

  /** Proposes a round, then each voter votes aye once its own earlier transaction (`after`) is in. */
  async function propose(by: string, args: string[], voters: [string, Promise<unknown>][]): Promise<number> {
    const made = json<{ proposal: number }>(
      await fedtune(['dao', 'propose-round', '--seed', by, ...args, '--json'], netFlags),
    );
    await Promise.all(
      voters.map(async ([seed, after]) => {
        await after;
        await fedtune(['dao', 'vote', String(made.proposal), 'aye', '--seed', seed, '--json'], netFlags);
      }),
    );
    // The votes are in: move the dev chain to the end of the voting period (workers + 8 blocks leave room for votes
    // that race with other transactions), so the round starts at once.
    while ((await readState()).networks[network]!.proposals[made.proposal]!.status === 'voting')
      await devnet.newBlock();
    return made.proposal;
  }

  async function roundProposal(id: number): Promise<RoundProposal> {
    return (await readState()).networks[network]!.proposals[id] as RoundProposal;
  }

  async function waitCompleted(id: number): Promise<void> {
    await until(
      async () => {
        const p = await roundProposal(id);
        if (p.status === 'failed')
          throw new DemoError('E_DEMO_ROUND_FAILED', `proposal ${id} failed: ${p.failure?.reason}`);
        return p.status === 'completed';
      },
      30 * 60_000,
      `proposal ${id} did not complete`,
    );
  }

  async function lastCheckpoint(id: number): Promise<string> {
    return (await roundProposal(id)).finalized.at(-1)!.checkpoint.id;
  }

  /** `fedtune round verify --recompute 1` on a proposal's last round: its result, whether it held or not. */
  async function verifyLast(id: number): Promise<VerifiedRound> {
    const round = (await roundProposal(id)).finalized.length - 1;
    const t0 = Date.now();
    const args = ['round', 'verify', '--proposal', String(id), '--round', String(round), '--recompute', '1'];
    const result = await runInProcess(args.concat('--json'), netFlags);
    const { status, stdout } = result;
    const report = status === 0 || status === 1 ? json<{ ok: boolean; code?: string }>(stdout || '{}') : null;
    if (!report || report.ok === undefined) throw stepFailed(result, args);
    return {
      proposal: id,
      round,
      ok: report.ok,
      ...(report.code ? { code: report.code } : {}),
      seconds: Math.round((Date.now() - t0) / 100) / 10,
    };
  }

  /**
   * Alice and Bob each verify the checkpoint's round (its aggregate; the demo re-executes a contribution once, in
   * verifyLast), re-measure the checkpoint on the held-out split, at the same time, and attest.
   */
  async function certify(id: string): Promise<void> {
    await Promise.all(
      ['//Alice', '//Bob'].map((seed) =>
        fedtune(
          [
            'checkpoint',
            'attest',
            id,
            '--seed',
            seed,
            '--out',
            join(out, 'attest', seed.slice(2), id.slice(2, 14)),
          ].concat(['--max-examples', String(evalExamples), '--recompute', '0']),
          netFlags,
        ),
      ),
    );
    const state = await readState();
    if (!state.networks[network]!.checkpoints[id as Hex32]?.certified)
      throw new DemoError(
        'E_DEMO_NOT_CERTIFIED',
        `checkpoint ${id} was not certified after two attestations`,
      );
  }

  /** `fedtune generate` from a downloaded folder, or from a certified id (fetched into cache). */
  async function generateFrom(
    checkpoint: string,
    prompt: string,
    cache: string | null,
    id = checkpoint,
  ): Promise<DemoSample> {
    const args = [
      'generate',
      '--checkpoint',
      checkpoint,
      '--prompt',
      prompt,
      '--tokens',
      '120',
      '--seed',
      '1',
    ];
    const text = (await fedtune(cache === null ? args : [...args, '--cache', cache], netFlags)).trim();
    return { checkpointId: id, prompt, text };
  }
}
