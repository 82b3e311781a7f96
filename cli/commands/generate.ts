// `fedtune generate`: text from a language-model checkpoint, or a classifier's label distribution, from a verified folder
// or a certified id fetched from chain.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { CHECKPOINT_FILE, verifyCheckpointDir, type Provenance } from '../../checkpoints/index.ts';
import { EOS, classificationExamples, decode, encode, fetchManifest } from '../../datasets/index.ts';
import type { BackendChoice, Model } from '../../model/index.ts';
import { BACKEND_CHOICES } from '../choices.ts';
import { FedtuneError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { withChain, type ChainArgs, type GlobalArgs } from '../options.ts';
import {
  logger,
  networkOf,
  parseHex32,
  parseNetworkId,
  print,
  readState,
  usage,
  withClient,
  withNetwork,
} from '../protocol.ts';
import { table } from '../table.ts';
import { fetchInto, idOf, readProvenance, record } from './checkpoint.ts';

interface GenerateArgs extends GlobalArgs, ChainArgs {
  checkpoint: string;
  prompt: string;
  tokens: number;
  temperature: number;
  topK: number;
  seed: number;
  network?: string;
  from: number;
  cache: string;
  allowUncertified: boolean;
  backend: BackendChoice;
}

/**
 * The checkpoint's bytes and provenance: a folder is re-verified against the id it names; an id must be committed on
 * chain (and certified unless allowed), and is downloaded into the cache with every chunk checked.
 */
async function checkpointFor(
  args: GenerateArgs,
  log: Logger,
): Promise<{ bytes: Uint8Array; provenance: Provenance | null }> {
  const dir = resolve(args.checkpoint);
  if (existsSync(dir)) {
    await verifyCheckpointDir(dir, await idOf(dir));
    return {
      bytes: new Uint8Array(await readFile(join(dir, CHECKPOINT_FILE))),
      provenance: await readProvenance(dir),
    };
  }
  if (!args.checkpoint.startsWith('0x'))
    throw usage(`--checkpoint ${args.checkpoint} is neither a folder nor a checkpoint id (0x + 64 hex)`);
  const id = parseHex32('--checkpoint', args.checkpoint);
  const network = parseNetworkId(args.network);
  return withClient(args, log, async (client) => {
    const net = networkOf(await readState(client, { network, from: args.from }), network);
    if (!record(net, id).certified && !args.allowUncertified)
      throw new FedtuneError(
        'E_NOT_CERTIFIED',
        `checkpoint ${id} is not certified (pass --allow-uncertified to use it anyway)`,
      );
    return fetchInto(client, net, id, join(resolve(args.cache), id.slice(2)), [], log, args.io);
  });
}

/** The label names of a classifier: the dataset's declared labels (its manifest, via provenance), else label0…. */
async function labelsOf(model: Model, provenance: Provenance | null, log: Logger): Promise<string[]> {
  const n = model.config.numLabels ?? 0;
  const dataset = provenance?.lineage[0]?.dataset;
  if (dataset?.manifestUri) {
    try {
      const labels = (await fetchManifest(dataset.manifestUri, dataset.root)).labels ?? [];
      if (labels.length === n) return labels;
      log.warn(
        { dataset: dataset.name, labels: labels.length, numLabels: n },
        'label count differs from the model',
      );
    } catch (error) {
      log.warn({ err: error, dataset: dataset.name }, 'cannot read the dataset manifest for label names');
    }
  }
  return Array.from({ length: n }, (_, i) => `label${i}`);
}

export const generateCommand: CommandModule<GlobalArgs, GenerateArgs> = {
  command: 'generate',
  describe:
    "Generate text from a language-model checkpoint, or a classifier's label distribution (a verified folder, or a certified id fetched from chain)",
  builder: (y) =>
    withNetwork(withChain(y), false)
      .option('checkpoint', {
        type: 'string',
        demandOption: true,
        describe: 'A folder from `checkpoint download`, or a checkpoint id (needs --network)',
      })
      .option('prompt', { type: 'string', demandOption: true })
      .option('tokens', {
        type: 'number',
        default: 200,
        describe: 'Bytes to generate (the tokenizer is byte-level)',
      })
      .option('temperature', { type: 'number', default: 0.8, describe: '0: always the most likely byte' })
      .option('top-k', { type: 'number', default: 40, describe: 'Sample among the k most likely (0: all)' })
      .option('seed', { type: 'number', default: 0 })
      .option('cache', {
        type: 'string',
        default: join(homedir(), '.cache', 'fedtune', 'checkpoints'),
        describe: 'Where an id is downloaded to (a folder per checkpoint)',
      })
      .option('allow-uncertified', { type: 'boolean', default: false })
      .option('backend', { choices: BACKEND_CHOICES, default: 'auto' as BackendChoice })
      .check((argv) => {
        const tokens = argv.tokens as number;
        if (!(Number.isInteger(tokens) && tokens >= 1 && tokens <= 100_000))
          throw usage('--tokens must be 1..100000');
        if (!((argv.temperature as number) >= 0)) throw usage('--temperature must be >= 0');
        const topK = argv.topK as number;
        if (!(Number.isInteger(topK) && topK >= 0)) throw usage('--top-k must be a whole number >= 0');
        return true;
      }) as unknown as Argv<GenerateArgs>,
  async handler(args) {
    const { classProbabilities, disposeModel, generate, initBackend, modelFromSafetensors } =
      await import('../../model/index.ts');
    const log = logger(args);
    const { bytes, provenance } = await checkpointFor(args, log);
    await initBackend({ backend: args.backend, logger: log });
    const model = modelFromSafetensors(bytes);
    try {
      if (model.config.kind === 'classifier') {
        const labels = await labelsOf(model, provenance, log);
        // Framed exactly as in training: the text's bytes, CLS, padding (the label given is not used).
        const [example] = classificationExamples(
          [{ id: 'prompt', text: args.prompt, label: labels[0] }],
          labels,
          model.config.context,
        );
        const probs = classProbabilities(model, [example!.tokens])[0]!;
        const ranked = labels
          .map((label, i) => ({ label, probability: probs[i]! }))
          .sort((a, b) => b.probability - a.probability);
        print(args, { prompt: args.prompt, labels: ranked }, () =>
          table(
            ['label', 'probability'],
            ranked.map((r) => [r.label, r.probability.toFixed(4)]),
          ),
        );
        return;
      }
      const out = generate(model, encode(args.prompt, { bos: true }), {
        maxTokens: args.tokens,
        temperature: args.temperature,
        topK: args.topK,
        seed: args.seed,
        stopToken: EOS,
      });
      // Special tokens (BOS, EOS, PAD, CLS) are not text.
      const text = decode(out.filter((t) => t < 256));
      print(args, { prompt: args.prompt, text }, () => `${args.prompt}${text}`);
    } finally {
      disposeModel(model);
    }
  },
};
