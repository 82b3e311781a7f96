// The whole network in one run: a dev chain, a DAO, two datasets, a coordinator and trainers as separate processes,
// pre-training then LoRA fine-tuning, attestations, and a consumer who downloads, verifies and generates. Every step
// goes through the `fedtune` CLI, as a person would type it: the dev chain and the one-shot commands (through the CLI's
// main) run in this process, the coordinator and the trainers as processes of their own. Steps that do not depend on
// each other (and sign with different accounts) run at the same time, so the wall time goes to training.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { startDevnet, type Devnet } from '../devchain/index.ts';
import { modelConfig, type PresetName } from '../model/index.ts';
import { connect, signerFromSeed, type ChainClient, type Hex32 } from '../pallet-bindings/index.ts';
import { classifyStage, type ClassifyOptions } from './classify.ts';
import { explorerHint } from './explore.ts';
import { CLASSIFY_ALPHA, DEMO_DEFAULTS, LORA, PROMPTS } from './defaults.ts';
import { DemoError, fedtune, json, quietNormalClosures, service, until, type Service } from './process.ts';
import { fund, watchCoordinator } from './setup.ts';
import { demoSteps, type DemoRun } from './steps.ts';
import { chainFigures, summaryTable, type DemoSummary } from './summary.ts';

export { DEMO_DEFAULTS } from './defaults.ts';
export { DemoError } from './process.ts';
export {
  summaryTable,
  type DemoClassify,
  type DemoRound,
  type DemoSample,
  type DemoSummary,
} from './summary.ts';

export interface DemoOptions {
  out: string;
  workers: number;
  rounds: number;
  finetuneRounds: number;
  model: PresetName;
  /** Optimiser steps per worker per pre-training round. */
  localSteps: number;
  /** Per fine-tuning round (default a quarter of localSteps). */
  finetuneLocalSteps?: number;
  batchSize?: number;
  /** Pre-training and fine-tuning learning rates. */
  lr?: number;
  finetuneLr?: number;
  /** Held-out windows per evaluation (coordinator and attesters). */
  evalExamples?: number;
  /** One more stage: a spam classifier (LoRA + head) fine-tuned from the pre-trained checkpoint. */
  classify?: ClassifyOptions;
  logger: Logger;
  /** Where progress lines go (default stderr). */
  print?: (line: string) => void;
  /** Where the dev chain keeps what it learned from the runtime for the next start (`fedtune devnet`'s cache). */
  runtimeCacheDir?: string;
}

export async function runDemo(options: DemoOptions): Promise<DemoSummary> {
  const started = Date.now();
  const out = resolve(options.out);
  const logs = join(out, 'logs');
  mkdirSync(logs, { recursive: true });
  const say = options.print ?? ((line: string) => process.stderr.write(`${line}\n`));
  const step = (text: string) => say(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)}s] ${text}`);
  const evalExamples = options.evalExamples ?? DEMO_DEFAULTS.evalExamples;
  const services: Service[] = [];
  let netEnv: NodeJS.ProcessEnv = {};
  let network: Hex32 = '0x';
  let devnet: Devnet | null = null;
  let client: ChainClient | null = null;
  const loud = quietNormalClosures();
  try {
    // 1. The dev chain, kept in the output folder; sharding needs no chain, so it starts at once.
    step(`starting the dev chain in ${join(out, 'chain')}`);
    const shardCount = String(Math.max(4, options.workers * 2));
    const shardArgs: Record<string, string[]> = {
      sotu: ['--scheme', 'partition'],
      'moby-dick': ['--scheme', 'iid', '--shards', shardCount],
      ...(options.classify
        ? {
            'spam-assassin': ['--scheme', 'dirichlet', '--alpha', String(CLASSIFY_ALPHA)].concat([
              '--shards',
              shardCount,
            ]),
          }
        : {}),
    };
    const sharded = Object.fromEntries(
      Object.entries(shardArgs).map(([name, args]) => {
        const file = join(out, `${name}.manifest.json`);
        const done = fedtune(['dataset', 'shard', name, ...args, '--out', file, '--json']).then((text) => ({
          file,
          ...json<{ root: string; shards: unknown[] }>(text),
        }));
        done.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
        return [name, done];
      }),
    ) as Record<string, Promise<{ file: string; root: string; shards: unknown[] }>>;
    devnet = await startDevnet({
      port: 0,
      dataDir: join(out, 'chain'),
      blockMode: 'instant',
      runtimeCacheDir: options.runtimeCacheDir,
      logger: options.logger,
    });
    client = await connect({ url: devnet.url, logger: options.logger });
    const chainFlags = ['--chain', devnet.url];
    const [alice, bob, charlie, ferdie] = await Promise.all(
      ['//Alice', '//Bob', '//Charlie', '//Ferdie'].map((s) => signerFromSeed(s)),
    );

    // 2. The DAO. Its voting period leaves room for every transaction that can land between a proposal and its last
    // vote (steps.ts): each trainer's registration, Bob's dataset registration, Charlie's, the two votes; the rest of
    // the period is empty blocks, built at once.
    const votingPeriod = options.workers + 8;
    const created = json<{ network: Hex32 }>(
      await fedtune(
        ['network', 'create', '--seed', '//Alice', '--name', 'fedtune-demo']
          .concat(...[alice!, bob!, charlie!].map((m) => ['--member', m.address]))
          .concat([
            '--quorum',
            '2/3',
            '--voting-period',
            String(votingPeriod),
            '--coordinator',
            ferdie!.address,
            '--json',
          ]),
        chainFlags,
      ),
    );
    network = created.network;
    // The services' environment; the one-shot commands get the same as flags (they share this process's environment).
    netEnv = { FEDTUNE_CHAIN: devnet.url, FEDTUNE_NETWORK: network };
    const netFlags = [...chainFlags, '--network', network];
    const run: DemoRun = {
      client,
      devnet,
      network,
      netFlags,
      out,
      evalExamples,
      workers: options.workers,
      ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}),
    };
    const chain = demoSteps(run);
    const {
      readState,
      propose,
      roundArgs,
      waitCompleted,
      lastCheckpoint,
      verifyLast,
      certify,
      generateFrom,
    } = chain;
    step(
      `network ${network.slice(0, 18)}… created: members Alice, Bob, Charlie (quorum 2/3), coordinator Ferdie`,
    );

    // 3. Datasets (Alice registers SOTU, Bob Moby Dick, at the same time) while the coordinator and trainers start.
    const register = async (name: string, seed: string) => {
      const s = await sharded[name]!;
      await fedtune(['dataset', 'register', s.file, '--seed', seed, '--json'], netFlags);
      step(
        `dataset ${name} registered by ${seed.slice(2)}: root ${s.root.slice(0, 18)}…, ${s.shards.length} shards`,
      );
      return { name, root: s.root };
    };
    const sotu = register('sotu', '//Alice');
    const moby = register('moby-dick', '//Bob');
    const coordinator = service(
      [
        'coordinator',
        '--seed',
        '//Ferdie',
        '--listen',
        '127.0.0.1:0',
        '--data-dir',
        join(out, 'coordinator'),
      ].concat(['--eval-examples', String(evalExamples), '--json']),
      netEnv,
      join(logs, 'coordinator.log'),
    );
    services.push(coordinator);
    const { trainingSeconds, baseAccuracy } = watchCoordinator(coordinator, step);
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

    // Trainers beyond the dev accounts are funded by Charlie, who signs nothing else until a vote.
    const trainerSeeds = Array.from({ length: options.workers }, (_, i) =>
      i === 0 ? '//Dave' : i === 1 ? '//Eve' : `//Trainer${i}`,
    );
    const funded = fund(client, charlie!, trainerSeeds.slice(2));
    await funded;
    const wire = { updates: 0, denseBytes: 0, encodedBytes: 0 };
    trainerSeeds.forEach((seed, i) => {
      const w = service(
        ['worker', 'run', '--coordinator', coordinatorUrl, '--seed', seed].concat([
          '--cache',
          join(out, 'workers', String(i)),
          '--json',
        ]),
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
    const registered = (async () => {
      let seen = 0;
      await until(
        async () => {
          const now = Object.keys((await readState()).networks[network]!.workers).length;
          if (now !== seen) step(`  ${(seen = now)}/${trainerSeeds.length} trainers registered`);
          return trainerSeeds.length <= now;
        },
        180_000,
        'the trainers did not all register',
      );
    })();
    registered.catch(() => undefined);

    // 4. Pre-training: proposed by Alice, approved by Bob and Charlie; the coordinator starts the round once the
    // proposal passes and enough trainers are connected.
    const config = modelConfig(options.model);
    const datasets = [await sotu];
    const pretrain = await propose(
      '//Alice',
      ['--kind', 'pretrain', '--dataset', datasets[0]!.root, '--model-config', JSON.stringify(config)].concat(
        ['--encoding', 'int8'],
        roundArgs(options.rounds, 10n, options.localSteps, options.lr ?? DEMO_DEFAULTS.lr),
      ),
      [
        ['//Bob', moby],
        ['//Charlie', funded],
      ],
    );
    step(
      `pre-training proposal ${pretrain} (${options.model} model, ${options.rounds} rounds, SOTU by president) approved`,
    );
    datasets.push(await moby);
    // Charlie registers spam-assassin once his vote is in (one signer, one transaction at a time).
    const spam = options.classify ? register('spam-assassin', '//Charlie') : null;
    spam?.catch(() => undefined);
    await registered;
    await waitCompleted(pretrain);
    const pretrainCkpt = await lastCheckpoint(pretrain);
    // Anyone can repeat a round from what it published: the last round of each proposal is verified, one contribution
    // re-executed, while the run goes on.
    const verified = [verifyLast(pretrain)];
    verified[0]!.catch(() => undefined);

    // 6. Members attest; two of three certify.
    await certify(pretrainCkpt);
    step(`checkpoint ${pretrainCkpt.slice(0, 18)}… certified by Alice and Bob`);

    // 7. Fine-tuning with LoRA on Moby Dick, from the certified checkpoint, proposed by Bob; meanwhile a consumer
    // samples the pre-trained checkpoint.
    const pretrainSample = generateFrom(pretrainCkpt, PROMPTS.pretrain, join(out, 'cache'));
    pretrainSample.catch(() => undefined);
    const loraConfig = { ...config, lora: LORA };
    const finetuneSteps = options.finetuneLocalSteps ?? Math.max(1, Math.round(options.localSteps / 4));
    const finetune = await propose(
      '//Bob',
      ['--kind', 'finetune', '--base', pretrainCkpt, '--dataset', datasets[1]!.root].concat(
        ['--model-config', JSON.stringify(loraConfig), '--encoding', 'dense'],
        roundArgs(options.finetuneRounds, 5n, finetuneSteps, options.finetuneLr ?? DEMO_DEFAULTS.finetuneLr),
      ),
      [
        ['//Alice', Promise.resolve()],
        ['//Charlie', spam ?? Promise.resolve()],
      ],
    );
    step(
      `fine-tuning proposal ${finetune} (LoRA rank ${LORA.rank} on Moby Dick, ${options.finetuneRounds} rounds) approved`,
    );
    const samples: Partial<DemoSummary['samples']> = { pretrain: await pretrainSample };
    step(`the pre-trained checkpoint writes: ${JSON.stringify(samples.pretrain!.text.slice(0, 100))}`);
    await waitCompleted(finetune);
    const finetuneCkpt = await lastCheckpoint(finetune);
    verified.push(verifyLast(finetune));
    verified[1]!.catch(() => undefined);
    const finetuneCertified = certify(finetuneCkpt);
    // --classify: Charlie proposes a spam classifier of the pre-trained checkpoint; Alice and Bob vote once their
    // attestations are in. Its rounds run while the consumer below downloads and samples.
    const classifying = options.classify
      ? classifyStage(
          { run, steps: chain, model: options.model, step },
          options.classify,
          pretrainCkpt,
          (await spam)!,
          finetuneCertified,
          baseAccuracy,
        )
      : null;
    classifying?.catch(() => undefined);
    await finetuneCertified;
    step(`fine-tuned checkpoint ${finetuneCkpt.slice(0, 18)}… certified`);

    // 8. A consumer: list, download, verify, provenance, generate.
    const downloadDir = join(out, 'download');
    const [listed] = await Promise.all([
      fedtune(['checkpoint', 'list', '--certified'], netFlags),
      fedtune(['checkpoint', 'download', finetuneCkpt, '--out', downloadDir], netFlags),
    ]);
    say(listed.trimEnd());
    await fedtune(['checkpoint', 'verify', downloadDir], netFlags);
    step(`downloaded ${finetuneCkpt.slice(0, 18)}… to ${downloadDir}; every byte verified against the chain`);
    samples.finetune = await generateFrom(downloadDir, PROMPTS.finetune, null, finetuneCkpt);
    step(`the fine-tuned checkpoint writes: ${JSON.stringify(samples.finetune.text.slice(0, 100))}`);

    const classify = classifying ? await classifying : undefined;
    const verifications = await Promise.all(verified);
    for (const v of verifications)
      step(
        `round ${v.round} of proposal ${v.proposal} ${v.ok ? 'verified' : `FAILED verification [${v.code}]`} in ${v.seconds} s (aggregate recomputed, one contribution re-executed)`,
      );
    await Promise.all(services.map((s) => s.stop()));
    services.length = 0;

    // 9. The summary, from the chain itself.
    const figures = await chainFigures(client, await readState(), network, { pretrain, finetune });
    const summary: DemoSummary = {
      chain: {
        dataDir: join(out, 'chain'),
        genesisHash: devnet.genesisHash,
        url: devnet.url,
        head: figures.extrinsics.blocks,
      },
      network,
      datasets,
      rounds: figures.rounds,
      certified: figures.certified,
      download: { dir: downloadDir, checkpointId: finetuneCkpt },
      evalLoss: figures.evalLoss,
      finetuneEvalLoss: figures.finetuneEvalLoss,
      evalExamples,
      wire,
      extrinsics: figures.extrinsics,
      rewardsPaid: figures.rewardsPaid,
      generated: samples.finetune.text,
      samples: samples as DemoSummary['samples'],
      verified: verifications,
      ...(classify ? { classify } : {}),
      trainingSeconds: Math.round(trainingSeconds() * 10) / 10,
      wallSeconds: Math.round((Date.now() - started) / 100) / 10,
    };
    writeFileSync(join(out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
    say(summaryTable(summary));
    say(
      `\nsummary: ${join(out, 'summary.json')}\nchain:   fedtune devnet --data-dir ${summary.chain.dataDir} (inspect it afterwards)`,
    );
    say(explorerHint(out, summary));
    return summary;
  } finally {
    try {
      await Promise.all(services.map((s) => s.stop()));
      await client?.close();
      await devnet?.close();
    } finally {
      loud();
    }
  }
}

export { exploreDemo, type DemoExplorer } from './explore.ts';
