// `fedtune demo` (and `npm run demo`): the whole network on the embedded dev chain, with real training on real text.
import { resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import type { DemoOptions } from '../../demo/index.ts';
import { PRESET_NAMES } from '../choices.ts';
// eslint-disable-next-line fedtune/boundaries, fedtune/lazy-cli -- defaults.ts imports nothing: --help shows the demo's defaults without loading the demo
import { DEMO_DEFAULTS } from '../../demo/defaults.ts';
import type { GlobalArgs } from '../options.ts';
import { logger, usage } from '../protocol.ts';
import { devnetCacheDir } from './devnet.ts';

/** The run's sizes as runDemo takes them; the rest as options parse them. */
interface DemoArgs
  extends
    GlobalArgs,
    Pick<
      DemoOptions,
      'workers' | 'rounds' | 'finetuneRounds' | 'model' | 'localSteps' | 'finetuneLocalSteps'
    > {
  batchSize: number;
  lr: number;
  finetuneLr: number;
  evalExamples: number;
  classify: boolean;
  classifyRounds: number;
  classifyLocalSteps: number;
  classifyLr: number;
  out?: string;
  explorer: boolean;
  explorerListen: string;
}

function stamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}

export const demoCommand: CommandModule<GlobalArgs, DemoArgs> = {
  command: 'demo',
  describe:
    'Run the whole network locally: dev chain, DAO, datasets, coordinator and trainers as processes, pre-training, LoRA fine-tuning, attestation, verified download',
  builder: (y) =>
    y
      .option('workers', { type: 'number', default: 2, describe: 'Trainer processes (each its own account)' })
      .option('rounds', {
        type: 'number',
        default: 3,
        describe: 'Pre-training rounds (SOTU, non-IID by president)',
      })
      .option('finetune-rounds', {
        type: 'number',
        default: 2,
        describe: 'LoRA fine-tuning rounds (Moby Dick)',
      })
      .option('model', {
        choices: PRESET_NAMES,
        default: 'tiny' as DemoOptions['model'],
        describe: 'Model size (tiny learns words in minutes on a CPU; small wants far longer)',
      })
      .option('local-steps', {
        type: 'number',
        default: 1500,
        describe: 'Optimiser steps per worker per pre-training round',
      })
      .option('finetune-local-steps', {
        type: 'number',
        describe: 'Optimiser steps per worker per fine-tuning round (default a quarter of --local-steps)',
      })
      .option('batch-size', {
        type: 'number',
        default: DEMO_DEFAULTS.batchSize,
        describe: 'Windows per step',
      })
      .option('lr', { type: 'number', default: DEMO_DEFAULTS.lr, describe: 'Pre-training learning rate' })
      .option('finetune-lr', {
        type: 'number',
        default: DEMO_DEFAULTS.finetuneLr,
        describe: 'Fine-tuning (LoRA) learning rate',
      })
      .option('eval-examples', {
        type: 'number',
        default: DEMO_DEFAULTS.evalExamples,
        describe: 'Held-out windows per evaluation (coordinator and attesters)',
      })
      .option('classify', {
        type: 'boolean',
        default: false,
        describe:
          'One more stage: a spam classifier (LoRA + head) fine-tuned from the pre-trained checkpoint on spam-assassin, Dirichlet label skew across trainers; reports held-out accuracy against the majority-class rate',
      })
      .option('classify-rounds', {
        type: 'number',
        default: DEMO_DEFAULTS.classifyRounds,
        describe: 'Classifier fine-tuning rounds (with --classify)',
      })
      .option('classify-local-steps', {
        type: 'number',
        default: DEMO_DEFAULTS.classifyLocalSteps,
        describe: 'Optimiser steps per worker per classifier round (with --classify)',
      })
      .option('classify-lr', {
        type: 'number',
        default: DEMO_DEFAULTS.classifyLr,
        describe: 'Classifier fine-tuning learning rate (with --classify)',
      })
      .option('explorer', {
        type: 'boolean',
        default: false,
        describe:
          'After the run, keep its chain and serve `fedtune explorer` (with its checkpoints) until Ctrl-C',
      })
      .option('explorer-listen', {
        type: 'string',
        default: '127.0.0.1:7400',
        describe: 'HOST:PORT the explorer listens on (with --explorer)',
      })
      .option('out', {
        type: 'string',
        describe: 'Output folder (default demo-out-<time>): chain, logs, summary.json',
      })
      .check((argv) => {
        for (const [k, min] of [
          ['workers', 1],
          ['rounds', 1],
          ['finetuneRounds', 1],
          ['localSteps', 1],
          ['batchSize', 1],
          ['evalExamples', 1],
          ['finetuneLocalSteps', 1],
          ['classifyRounds', 1],
          ['classifyLocalSteps', 1],
        ] as const) {
          const v = argv[k] as number;
          if (v === undefined && k === 'finetuneLocalSteps') continue;
          if (!(Number.isInteger(v) && v >= min))
            throw usage(
              `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} must be a whole number >= ${min}`,
            );
        }
        if ((argv.workers as number) > 16) throw usage('--workers is at most 16 on one machine');
        for (const k of ['lr', 'finetuneLr', 'classifyLr'] as const)
          if (!((argv[k] as number) > 0))
            throw usage(`--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} must be a number > 0`);
        return true;
      })
      .example(
        '$0 demo',
        'the default run: 2 trainers, 3 + 2 rounds of the tiny model, a few minutes on 2 cores',
      )
      .example('$0 demo --workers 2 --rounds 1 --finetune-rounds 1 --out /tmp/d', 'the smallest run')
      .example(
        '$0 demo --classify',
        'the default run, then a spam classifier fine-tuned from its checkpoint',
      ) as unknown as Argv<DemoArgs>,
  async handler(args) {
    const { runDemo } = await import('../../demo/index.ts');
    const out = resolve(args.out ?? `demo-out-${stamp()}`);
    const summary = await runDemo({
      out,
      workers: args.workers,
      rounds: args.rounds,
      finetuneRounds: args.finetuneRounds,
      model: args.model,
      localSteps: args.localSteps,
      finetuneLocalSteps: args.finetuneLocalSteps,
      batchSize: args.batchSize,
      lr: args.lr,
      finetuneLr: args.finetuneLr,
      evalExamples: args.evalExamples,
      ...(args.classify
        ? {
            classify: {
              rounds: args.classifyRounds,
              localSteps: args.classifyLocalSteps,
              lr: args.classifyLr,
            },
          }
        : {}),
      logger: logger({ ...args, logLevel: args.logLevel === 'info' ? 'warn' : args.logLevel }),
      print: (line) => process.stderr.write(`${line}\n`),
      runtimeCacheDir: devnetCacheDir(),
    });
    if (args.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
    else process.stdout.write(`${out}\n`);
    if (!args.explorer) return;
    const { exploreDemo } = await import('../../demo/index.ts');
    const [host, port] = [
      args.explorerListen.replace(/:\d+$/, ''),
      Number(/:(\d+)$/.exec(args.explorerListen)?.[1]),
    ];
    if (!host || !Number.isInteger(port))
      throw usage(`--explorer-listen takes HOST:PORT, got ${args.explorerListen}`);
    const explorer = await exploreDemo({ out, summary, host, port, logger: logger(args) });
    process.stderr.write(`explorer: ${explorer.url} (Ctrl-C stops it and the chain)\n`);
    await new Promise<void>((done) => {
      process.once('SIGINT', done);
      process.once('SIGTERM', done);
    });
    process.stderr.write('stopping the explorer and the chain\n');
    await explorer.close();
  },
};
