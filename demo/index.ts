// The whole network in one run: a dev chain, a DAO, two datasets, a coordinator and trainers as separate processes,
// pre-training then LoRA fine-tuning, attestations, and a consumer who downloads, verifies and generates. Every step
// goes through the `fedtune` CLI, as a person would type it; only the dev chain runs in this process.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';
import { BIN, runFedtune } from '../bin/index.ts';
import { startDevnet, type Devnet } from '../devchain/index.ts';
import { modelConfig, type PresetName } from '../model/index.ts';
import {
  connect,
  fetchBlock,
  initialState,
  signerFromSeed,
  syncState,
  type ChainClient,
  type Hex32,
  type ProtocolState,
  type RoundProposal,
} from '../pallet-bindings/index.ts';

export class DemoError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'DemoError';
    this.code = code;
  }
}

export interface DemoOptions {
  out: string;
  workers: number;
  rounds: number;
  finetuneRounds: number;
  model: PresetName;
  localSteps: number;
  logger: Logger;
  /** Where progress lines go (default stderr). */
  print?: (line: string) => void;
}

export interface DemoRound {
  proposal: number;
  kind: 'pretrain' | 'finetune';
  round: number;
  finalizeBlock: number;
  finalizeBlockHash: string;
  checkpointId: string;
  evalLoss: number;
  trainLoss: number;
  contributors: { account: string; samples: number }[];
  rewards: string;
}

export interface DemoSummary {
  chain: { dataDir: string; genesisHash: string; url: string; head: number };
  network: string;
  datasets: { name: string; root: string }[];
  rounds: DemoRound[];
  certified: string[];
  download: { dir: string; checkpointId: string };
  evalLoss: { before: number; after: number };
  finetuneEvalLoss: { before: number; after: number };
  wire: { updates: number; denseBytes: number; encodedBytes: number };
  extrinsics: { signed: number; blocks: number };
  rewardsPaid: string;
  generated: string;
  wallSeconds: number;
}

const PLANCK_PER_ROC = 10n ** 12n;

/** Runs one CLI command to completion; a non-zero exit is a DemoError carrying its stderr. */
async function fedtune(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const { status, stdout, stderr } = await runFedtune(args, env, { timeoutMs: 10 * 60_000 });
  if (status === 0) return stdout;
  throw new DemoError(
    'E_DEMO_STEP',
    `\`fedtune ${args.join(' ')}\` exited ${status}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`,
  );
}

interface Service {
  child: ChildProcess;
  onLine(fn: (line: string) => void): void;
  stop(): Promise<void>;
}

/** A long-running CLI process (coordinator, worker): stdout lines to the caller, stderr to a log file. */
function service(args: string[], env: NodeJS.ProcessEnv, logFile: string): Service {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, FEDTUNE_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr!.pipe(createWriteStream(logFile));
  const listeners: ((line: string) => void)[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => listeners.forEach((fn) => fn(line)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    child,
    onLine: (fn) => listeners.push(fn),
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

const json = <T>(text: string): T => JSON.parse(text) as T;

export async function runDemo(options: DemoOptions): Promise<DemoSummary> {
  const started = Date.now();
  const out = resolve(options.out);
  const logs = join(out, 'logs');
  mkdirSync(logs, { recursive: true });
  const say = options.print ?? ((line: string) => process.stderr.write(`${line}\n`));
  const step = (text: string) => say(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)}s] ${text}`);
  const services: Service[] = [];
  let netEnv: NodeJS.ProcessEnv = {};
  let network: Hex32 = '0x';
  let devnet: Devnet | null = null;
  let client: ChainClient | null = null;
  try {
    // 1. The dev chain, kept in the output folder.
    step(`starting the dev chain in ${join(out, 'chain')}`);
    devnet = await startDevnet({
      port: 0,
      dataDir: join(out, 'chain'),
      blockMode: 'instant',
      logger: options.logger,
    });
    client = await connect({ url: devnet.url, logger: options.logger });
    const env = { FEDTUNE_CHAIN: devnet.url };
    const [alice, bob, charlie, ferdie] = await Promise.all(
      ['//Alice', '//Bob', '//Charlie', '//Ferdie'].map((s) => signerFromSeed(s)),
    );
    const readState = async (): Promise<ProtocolState> =>
      syncState(client!, { state: initialState({ only: network === '0x' ? null : network }) });

    // 2. The DAO.
    const created = json<{ network: Hex32 }>(
      await fedtune(
        [
          'network',
          'create',
          '--seed',
          '//Alice',
          '--name',
          'fedtune-demo',
          '--member',
          alice!.address,
          '--member',
          bob!.address,
          '--member',
          charlie!.address,
          '--quorum',
          '2/3',
          '--voting-period',
          '2',
          '--coordinator',
          ferdie!.address,
          '--json',
        ],
        env,
      ),
    );
    network = created.network;
    netEnv = { ...env, FEDTUNE_NETWORK: network };
    step(
      `network ${network.slice(0, 18)}… created: members Alice, Bob, Charlie (quorum 2/3), coordinator Ferdie`,
    );

    // 3. Datasets: SOTU by president (non-IID) for pre-training, Moby Dick for fine-tuning.
    const datasets: { name: string; root: string }[] = [];
    for (const [name, shardArgs] of [
      ['sotu', ['--scheme', 'partition']],
      ['moby-dick', ['--scheme', 'iid', '--shards', String(Math.max(4, options.workers * 2))]],
    ] as const) {
      const file = join(out, `${name}.manifest.json`);
      const sharded = json<{ root: string; shards: unknown[] }>(
        await fedtune(['dataset', 'shard', name, ...shardArgs, '--out', file, '--json'], netEnv),
      );
      await fedtune(['dataset', 'register', file, '--seed', '//Alice', '--json'], netEnv);
      datasets.push({ name, root: sharded.root });
      step(`dataset ${name} registered: root ${sharded.root.slice(0, 18)}…, ${sharded.shards.length} shards`);
    }

    // 5a. The coordinator and the trainers, each its own process and chain account.
    const coordinator = service(
      [
        'coordinator',
        '--seed',
        '//Ferdie',
        '--listen',
        '127.0.0.1:0',
        '--data-dir',
        join(out, 'coordinator'),
        '--eval-examples',
        '128',
        '--json',
      ],
      netEnv,
      join(logs, 'coordinator.log'),
    );
    services.push(coordinator);
    const coordinatorUrl = await new Promise<string>((resolveUrl, reject) => {
      coordinator.onLine((line) => {
        const e = JSON.parse(line) as { type: string; url?: string };
        if (e.type === 'ready') resolveUrl(e.url!);
      });
      coordinator.child.once('exit', (code) =>
        reject(
          new DemoError(
            'E_DEMO_COORDINATOR',
            `the coordinator exited (${code}); see ${join(logs, 'coordinator.log')}`,
          ),
        ),
      );
    });
    step(`coordinator (Ferdie) serving workers at ${coordinatorUrl}`);
    coordinator.onLine((line) => {
      const e = JSON.parse(line) as Record<string, unknown>;
      if (e.type === 'roundStarted') step(`  proposal ${e.proposal} round ${e.round}: ${e.tasks} tasks sent`);
      else if (e.type === 'roundClosed')
        step(
          `  proposal ${e.proposal} round ${e.round}: ${e.accepted} updates aggregated; eval loss ${(e.evalLoss as number).toFixed(4)}${e.baseEvalLoss !== null ? ` (before: ${(e.baseEvalLoss as number).toFixed(4)})` : ''}`,
        );
      else if (e.type === 'finalizeRound')
        step(
          `  proposal ${e.proposal} round ${e.round} committed in block ${e.blockNumber}, ${(e.rewards as unknown[]).length} rewards paid`,
        );
      else if (e.type === 'updateRejected' || e.type === 'failRound') step(`  ${line}`);
    });

    const trainerSeeds = Array.from({ length: options.workers }, (_, i) =>
      i === 0 ? '//Dave' : i === 1 ? '//Eve' : `//Trainer${i}`,
    );
    await fund(client, alice!, trainerSeeds.slice(2));
    const wire = { updates: 0, denseBytes: 0, encodedBytes: 0 };
    trainerSeeds.forEach((seed, i) => {
      const w = service(
        [
          'worker',
          'run',
          '--coordinator',
          coordinatorUrl,
          '--seed',
          seed,
          '--cache',
          join(out, 'workers', String(i)),
          '--json',
        ],
        netEnv,
        join(logs, `worker-${i}.log`),
      );
      w.onLine((line) => {
        const e = JSON.parse(line) as { type: string; bytes?: number; denseBytes?: number };
        if (e.type === 'ack') {
          wire.updates += 1;
          wire.encodedBytes += e.bytes!;
          wire.denseBytes += e.denseBytes!;
        }
      });
      services.push(w);
    });
    step(`${options.workers} trainers started (${trainerSeeds.join(', ')}); each registers itself on chain`);
    let registered = 0;
    await until(
      async () => {
        const net = (await readState()).networks[network]!;
        const now = Object.keys(net.workers).length;
        if (now !== registered) step(`  ${(registered = now)}/${trainerSeeds.length} trainers registered`);
        return trainerSeeds.length <= now;
      },
      180_000,
      'the trainers did not all register',
    );

    // 4. Pre-training: proposed by Alice, approved by Bob and Charlie.
    const config = modelConfig(options.model);
    /** The options both proposals share; each adds its kind, dataset, model and encoding. */
    const roundArgs = (rounds: number, reward: bigint, lr: string) => [
      '--rounds',
      String(rounds),
      '--min-workers',
      String(Math.min(2, options.workers)),
      '--max-workers',
      String(options.workers),
      '--round-deadline',
      '300',
      '--reward',
      String(reward * PLANCK_PER_ROC),
      '--local-steps',
      String(options.localSteps),
      '--batch-size',
      '16',
      '--lr',
      lr,
    ];
    const pretrain = await propose(
      '//Alice',
      [
        '--kind',
        'pretrain',
        '--dataset',
        datasets[0]!.root,
        '--model-config',
        JSON.stringify(config),
        '--encoding',
        'int8',
        ...roundArgs(options.rounds, 10n, '0.005'),
      ],
      ['//Bob', '//Charlie'],
    );
    step(
      `pre-training proposal ${pretrain} (${options.model} model, ${options.rounds} rounds, SOTU by president) approved`,
    );
    await waitCompleted(pretrain);
    const pretrainCkpt = await lastCheckpoint(pretrain);

    // 6. Members attest; two of three certify.
    await certify(pretrainCkpt);
    step(`checkpoint ${pretrainCkpt.slice(0, 18)}… certified by Alice and Bob`);

    // 7. Fine-tuning with LoRA on Moby Dick, from the certified checkpoint; proposed by Bob.
    const loraConfig = { ...config, lora: { rank: 4, alpha: 8, targets: ['attn.c_attn', 'mlp.c_fc'] } };
    const finetune = await propose(
      '//Bob',
      [
        '--kind',
        'finetune',
        '--base',
        pretrainCkpt,
        '--dataset',
        datasets[1]!.root,
        '--model-config',
        JSON.stringify(loraConfig),
        '--encoding',
        'dense',
        ...roundArgs(options.finetuneRounds, 5n, '0.01'),
      ],
      ['//Alice', '//Charlie'],
    );
    step(
      `fine-tuning proposal ${finetune} (LoRA rank 4 on Moby Dick, ${options.finetuneRounds} rounds) approved`,
    );
    await waitCompleted(finetune);
    const finetuneCkpt = await lastCheckpoint(finetune);
    await certify(finetuneCkpt);
    step(`fine-tuned checkpoint ${finetuneCkpt.slice(0, 18)}… certified`);

    // 8. A consumer: list, download, verify, provenance, generate.
    const listed = await fedtune(['checkpoint', 'list', '--certified'], netEnv);
    say(listed.trimEnd());
    const downloadDir = join(out, 'download');
    await fedtune(['checkpoint', 'download', finetuneCkpt, '--out', downloadDir], netEnv);
    await fedtune(['checkpoint', 'verify', downloadDir], netEnv);
    step(`downloaded ${finetuneCkpt.slice(0, 18)}… to ${downloadDir}; every byte verified against the chain`);
    const generated = (
      await fedtune(
        ['generate', '--checkpoint', downloadDir, '--prompt', 'Call me ', '--tokens', '80', '--seed', '1'],
        netEnv,
      )
    ).trim();
    step(`generated from "Call me ": ${JSON.stringify(generated.slice(0, 120))}`);

    await Promise.all(services.map((s) => s.stop()));
    services.length = 0;

    // 9. The summary, from the chain itself.
    const state = await readState();
    const net = state.networks[network]!;
    const rounds: DemoRound[] = [];
    for (const id of [pretrain, finetune]) {
      const p = net.proposals[id] as RoundProposal;
      for (const [r, f] of p.finalized.entries()) {
        rounds.push({
          proposal: id,
          kind: id === pretrain ? 'pretrain' : 'finetune',
          round: r,
          finalizeBlock: f.block,
          finalizeBlockHash: (await client.api.rpc.chain.getBlockHash(f.block)).toHex(),
          checkpointId: f.checkpoint.id,
          evalLoss: f.metrics.evalLoss,
          trainLoss: f.metrics.trainLoss,
          contributors: f.contributors.map((c) => ({ account: c.account, samples: c.samples })),
          rewards: f.rewards.reduce((s, x) => s + BigInt(x.amount), 0n).toString(),
        });
      }
    }
    const before = (id: number) =>
      (net.proposals[id] as RoundProposal).finalized[0]!.metrics.extra.find((m) => m.name === 'baseEvalLoss')!
        .value;
    const after = (id: number) => rounds.filter((r) => r.proposal === id).at(-1)!.evalLoss;
    let signed = 0;
    for (let n = 1; n <= state.height; n++) {
      const block = await fetchBlock(client, (await client.api.rpc.chain.getBlockHash(n)).toHex());
      signed += block.extrinsics.filter((x) => x.signer !== null).length;
    }
    const summary: DemoSummary = {
      chain: {
        dataDir: join(out, 'chain'),
        genesisHash: devnet.genesisHash,
        url: devnet.url,
        head: state.height,
      },
      network,
      datasets,
      rounds,
      certified: Object.values(net.checkpoints)
        .filter((c) => c.certified)
        .map((c) => c.id),
      download: { dir: downloadDir, checkpointId: finetuneCkpt },
      evalLoss: { before: before(pretrain), after: after(pretrain) },
      finetuneEvalLoss: { before: before(finetune), after: after(finetune) },
      wire,
      extrinsics: { signed, blocks: state.height },
      rewardsPaid: rounds.reduce((s, r) => s + BigInt(r.rewards), 0n).toString(),
      generated,
      wallSeconds: Math.round((Date.now() - started) / 100) / 10,
    };
    writeFileSync(join(out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
    say(summaryTable(summary));
    say(
      `\nsummary: ${join(out, 'summary.json')}\nchain:   fedtune devnet --data-dir ${summary.chain.dataDir} (inspect it afterwards)`,
    );
    return summary;
  } finally {
    await Promise.all(services.map((s) => s.stop()));
    await client?.close();
    await devnet?.close();
  }

  async function propose(by: string, args: string[], voters: string[]): Promise<number> {
    const made = json<{ proposal: number }>(
      await fedtune(['dao', 'propose-round', '--seed', by, ...args, '--json'], netEnv),
    );
    for (const v of voters)
      await fedtune(['dao', 'vote', String(made.proposal), 'aye', '--seed', v, '--json'], netEnv);
    return made.proposal;
  }

  async function roundProposal(id: number): Promise<RoundProposal> {
    const state = await syncState(client!, { state: initialState({ only: network }) });
    return state.networks[network]!.proposals[id] as RoundProposal;
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

  async function certify(id: string): Promise<void> {
    for (const seed of ['//Alice', '//Bob']) {
      const dir = join(out, 'attest', seed.slice(2), id.slice(2, 14));
      await fedtune(['checkpoint', 'attest', id, '--seed', seed, '--out', dir], netEnv);
    }
    const state = await syncState(client!, { state: initialState({ only: network }) });
    if (!state.networks[network]!.checkpoints[id as Hex32]?.certified)
      throw new DemoError(
        'E_DEMO_NOT_CERTIFIED',
        `checkpoint ${id} was not certified after two attestations`,
      );
  }
}

/** Funds trainer accounts beyond the dev accounts from Alice, in one batch. */
async function fund(client: ChainClient, from: Awaited<ReturnType<typeof signerFromSeed>>, seeds: string[]) {
  if (seeds.length === 0) return;
  const pairs = await Promise.all(seeds.map((s) => signerFromSeed(s)));
  const tx = client.api.tx.utility.batchAll(
    pairs.map((p) => client.api.tx.balances.transferKeepAlive(p.address, 1000n * PLANCK_PER_ROC)),
  );
  await new Promise<void>((resolvePromise, reject) => {
    void tx
      .signAndSend(from, ({ status, dispatchError }) => {
        if (dispatchError)
          reject(new DemoError('E_DEMO_FUND', `funding trainers failed: ${dispatchError.toString()}`));
        else if (status.isFinalized) resolvePromise();
      })
      .catch(reject);
  });
}

async function until(fn: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new DemoError('E_DEMO_TIMEOUT', `${what} within ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

export function summaryTable(s: DemoSummary): string {
  const rows = s.rounds.map(
    (r) =>
      `  ${String(r.proposal).padStart(8)}  ${r.kind.padEnd(8)}  ${String(r.round).padStart(5)}  ${r.evalLoss.toFixed(4).padStart(9)}  ${r.trainLoss.toFixed(4).padStart(10)}  ${String(r.contributors.length).padStart(7)}  ${String(r.finalizeBlock).padStart(5)}  ${r.checkpointId.slice(0, 14)}…`,
  );
  const roc = (planck: string) => (Number(BigInt(planck) / 10n ** 9n) / 1000).toFixed(3);
  return [
    '',
    'fedtune demo: summary',
    `  proposal  kind      round  eval loss  train loss  updates  block  checkpoint`,
    ...rows,
    '',
    `  pre-training eval loss   ${s.evalLoss.before.toFixed(4)} → ${s.evalLoss.after.toFixed(4)}`,
    `  fine-tuning eval loss    ${s.finetuneEvalLoss.before.toFixed(4)} → ${s.finetuneEvalLoss.after.toFixed(4)} (Moby Dick)`,
    `  bytes on the wire        ${(s.wire.encodedBytes / 1e6).toFixed(2)} MB sent for ${(s.wire.denseBytes / 1e6).toFixed(2)} MB dense (${s.wire.updates} updates)`,
    `  chain                    ${s.extrinsics.signed} signed extrinsics in ${s.extrinsics.blocks} blocks`,
    `  rewards paid             ${roc(s.rewardsPaid)} ROC`,
    `  certified checkpoints    ${s.certified.length}`,
    `  wall time                ${s.wallSeconds} s`,
  ].join('\n');
}
