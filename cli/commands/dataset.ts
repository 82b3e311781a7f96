// `fedtune dataset list | inspect | shard | verify`: the datasets/ library at the command line.
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Argv, CommandModule } from 'yargs';
import {
  BUILTIN_NAMES,
  DatasetError,
  SHARD_SCHEMES,
  buildManifest,
  builtinInfo,
  builtinStats,
  evalProof,
  evalRecords,
  labelSkew,
  loadDataset,
  recordHash,
  registerDatasetFields,
  shardDataset,
  shardProof,
  shardRecords,
  verifyManifest,
  verifyShard,
  type Dataset,
  type DatasetManifest,
  type ShardParameters,
  type ShardScheme,
} from '../../datasets/index.ts';
import type { Logger } from '../log.ts';
import { withChain, type ChainArgs, type GlobalArgs } from '../options.ts';
import { loadSigner, withSigner, type SignerArgs } from '../keys.ts';
import { isHex32 } from '../../merkle/index.ts';
import {
  logger,
  parseNetworkId,
  print,
  submitChecked,
  withClient,
  withNetwork,
  type NetworkArgs,
} from '../protocol.ts';

interface SourceArgs extends GlobalArgs {
  name: string;
  labels?: string;
  license?: string;
  source?: string;
  by?: string;
}

interface ShardArgs extends SourceArgs {
  scheme: ShardScheme;
  shards?: number;
  alpha?: number;
  seed: number;
  'eval-fraction': number;
  evalFraction: number;
}

const NAME_HELP = `a built-in (${BUILTIN_NAMES.join(', ')}), a folder of .txt files, or a .jsonl file`;

function withSource<T>(y: Argv<T>): Argv<T & SourceArgs> {
  return y
    .positional('name', { type: 'string', describe: NAME_HELP, demandOption: true })
    .option('labels', { type: 'string', describe: 'Own data: the declared label set, comma-separated' })
    .option('license', { type: 'string', describe: 'Own data: its licence (SPDX id)' })
    .option('source', { type: 'string', describe: 'Own data: where it comes from' })
    .option('by', {
      type: 'string',
      describe: 'partition scheme: the field to group by (default: the dataset\'s own, SOTU "president")',
    }) as unknown as Argv<T & SourceArgs>;
}

function withSharding<T>(y: Argv<T>): Argv<T & ShardArgs> {
  return withSource(y)
    .option('scheme', { choices: SHARD_SCHEMES, default: 'iid' as ShardScheme, describe: 'How to split' })
    .option('shards', {
      type: 'number',
      describe: 'Number of shards (partition: defaults to one per key value)',
    })
    .option('alpha', { type: 'number', describe: 'dirichlet: concentration (small = more label skew)' })
    .option('seed', { type: 'number', default: 0, describe: 'Seed for the eval split and the shards' })
    .option('eval-fraction', {
      type: 'number',
      default: 0.1,
      describe: 'Fraction held out for evaluation before sharding',
    }) as unknown as Argv<T & ShardArgs>;
}

function load(args: SourceArgs, log: Logger): Dataset {
  return loadDataset({
    name: args.name,
    log,
    ...(args.labels !== undefined ? { labels: args.labels.split(',').map((l) => l.trim()) } : {}),
    ...(args.license !== undefined ? { license: args.license } : {}),
    ...(args.source !== undefined ? { source: args.source } : {}),
  });
}

function shardParams(args: ShardArgs): ShardParameters {
  return {
    scheme: args.scheme,
    seed: args.seed,
    evalFraction: args.evalFraction,
    ...(args.shards !== undefined ? { shards: args.shards } : {}),
    ...(args.alpha !== undefined ? { alpha: args.alpha } : {}),
    ...(args.by !== undefined ? { by: args.by } : {}),
  };
}

/** The library's sharding parameters by the options that set them, so that an error names what to pass. */
const SHARD_OPTIONS: [RegExp, string][] = [
  [/shards/, '--shards N (how many shards; iid and dirichlet need it, e.g. --shards 4)'],
  [/^scheme/, `--scheme ${SHARD_SCHEMES.join('|')}`],
  [/^seed/, '--seed with a whole number'],
  [/^eval fraction/, '--eval-fraction with a number in [0, 1)'],
  [/^alpha/, '--alpha with a positive number'],
];

function shardWithHints(ds: Dataset, args: ShardArgs) {
  try {
    return shardDataset(ds, shardParams(args));
  } catch (error) {
    const option = SHARD_OPTIONS.find(([pattern]) => pattern.test((error as Error).message))?.[1];
    if ((error as { code?: string }).code !== 'E_SHARD_BAD_PARAM' || option === undefined) throw error;
    throw new DatasetError('E_SHARD_BAD_PARAM', `${(error as Error).message}: pass ${option}`, {
      cause: error,
    });
  }
}

function table(header: string[], rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map(String));
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]!.length)));
  const numeric = header.map((_, i) => cells.length > 0 && cells.every((r) => /^-?[\d.]+$/.test(r[i]!)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

function mb(bytes: number): string {
  return (bytes / 1e6).toFixed(2);
}

function labelCounts(labels: (string | undefined)[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of labels) if (l !== undefined) out[l] = (out[l] ?? 0) + 1;
  return out;
}

const list: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'list',
  describe: 'The built-in corpora with their size, labels, licence and source',
  handler(args) {
    const log = logger(args);
    const rows = BUILTIN_NAMES.map((name) => {
      const info = builtinInfo(name);
      // Recorded sizes, not a corpus load; a package of another version than measured is loaded and counted.
      const stats =
        builtinStats(name) ??
        ((ds) => ({
          records: ds.records.length,
          bytes: ds.records.reduce((a, r) => a + Buffer.byteLength(r.text), 0),
        }))(loadDataset({ name, log }));
      return {
        name,
        records: stats.records,
        bytes: stats.bytes,
        labels: info.labels ?? [],
        partitionKey: info.partitionKey ?? null,
        license: info.license,
        source: info.source,
        description: info.description,
      };
    });
    print(args, rows, () =>
      table(
        ['name', 'records', 'MB', 'labels', 'partition', 'license', 'source'],
        rows.map((r) => [
          r.name,
          r.records,
          mb(r.bytes),
          r.labels.join('/') || '-',
          r.partitionKey ?? '-',
          r.license,
          r.source,
        ]),
      ),
    );
  },
};

const inspect: CommandModule<GlobalArgs, SourceArgs> = {
  command: 'inspect <name>',
  describe: 'Size, labels, partition keys and a few records of one dataset',
  builder: (y) => withSource(y),
  handler(args) {
    const ds = load(args, logger(args));
    const sizes = ds.records.map((r) => Buffer.byteLength(r.text)).sort((a, b) => a - b);
    const bytes = sizes.reduce((a, b) => a + b, 0);
    const key = args.by ?? ds.partitionKey;
    const keys = key ? new Set(ds.records.map((r) => String(r.meta?.[key] ?? ''))) : undefined;
    const summary = {
      name: ds.name,
      description: ds.description,
      license: ds.license,
      source: ds.source,
      records: ds.records.length,
      bytes,
      // BOS + bytes + EOS per record under the byte-level tokenizer.
      tokens: bytes + 2 * ds.records.length,
      recordBytes: {
        min: sizes[0]!,
        median: sizes[Math.floor(sizes.length / 2)]!,
        max: sizes[sizes.length - 1]!,
      },
      labels: ds.labels ? labelCounts(ds.records.map((r) => r.label)) : null,
      partition: key ? { by: key, values: keys!.size } : null,
      sample: ds.records.slice(0, 5).map((r) => ({
        id: r.id,
        bytes: Buffer.byteLength(r.text),
        ...(r.label !== undefined ? { label: r.label } : {}),
        ...(r.meta ? { meta: r.meta } : {}),
        start: r.text.slice(0, 60).replace(/\s+/g, ' '),
      })),
    };
    print(args, summary, () =>
      [
        `${ds.name}: ${ds.description}`,
        `license   ${ds.license}`,
        `source    ${ds.source}`,
        `records   ${ds.records.length} (${mb(bytes)} MB, ${summary.tokens} tokens with BOS/EOS; ` +
          `record bytes min ${summary.recordBytes.min}, median ${summary.recordBytes.median}, max ${summary.recordBytes.max})`,
        summary.labels
          ? `labels    ${Object.entries(summary.labels)
              .map(([l, n]) => `${l} ${n}`)
              .join(', ')}`
          : 'labels    none',
        summary.partition
          ? `partition by ${summary.partition.by}: ${summary.partition.values} values`
          : 'partition none',
        '',
        table(
          ['id', 'bytes', 'label', 'start'],
          summary.sample.map((r) => [r.id, r.bytes, r.label ?? '', r.start]),
        ),
      ].join('\n'),
    );
  },
};

interface ShardCmdArgs extends ShardArgs {
  out?: string;
}

const shard: CommandModule<GlobalArgs, ShardCmdArgs> = {
  command: 'shard <name>',
  describe:
    'Hold out an eval split, split the rest into shards, and print the manifest root (the dataset id)',
  builder: (y) =>
    withSharding(y).option('out', {
      type: 'string',
      describe: 'Write the full manifest (records, shards, eval split, root) as JSON to this file',
    }) as unknown as Argv<ShardCmdArgs>,
  handler(args) {
    const log = logger(args);
    const ds = load(args, log);
    const plan = shardWithHints(ds, args);
    const manifest = buildManifest(ds, plan);
    if (args.out) writeFileSync(args.out, `${JSON.stringify(manifest)}\n`);
    log.info({ dataset: ds.name, root: manifest.root, shards: plan.shards.length }, 'built manifest');
    const skew = ds.labels ? labelSkew(ds, plan) : undefined;
    const labelsOf = (idx: number[]) => labelCounts(idx.map((i) => ds.records[i]!.label));
    const summary = {
      root: manifest.root,
      registerDataset: registerDatasetFields(manifest, args.out ? pathToFileURL(resolve(args.out)).href : ''),
      sharding: manifest.sharding,
      ...(skew !== undefined ? { labelSkew: skew } : {}),
      shards: manifest.shards.map((s) => ({
        index: s.index,
        records: s.records.length,
        bytes: s.bytes,
        leaf: s.leaf,
        ...(s.key !== undefined ? { key: s.key } : {}),
        ...(ds.labels ? { labels: labelsOf(s.records) } : {}),
      })),
      eval: { records: manifest.eval.records.length, bytes: manifest.eval.bytes, leaf: manifest.eval.leaf },
    };
    print(args, summary, () => {
      const extra = (s: (typeof summary.shards)[number]) =>
        s.key ??
        (s.labels
          ? Object.entries(s.labels)
              .map(([l, n]) => `${l} ${n}`)
              .join(', ')
          : '');
      return [
        table(
          ['shard', 'records', 'MB', 'leaf', ds.partitionKey || args.by ? 'key' : ds.labels ? 'labels' : ''],
          summary.shards.map((s) => [s.index, s.records, mb(s.bytes), `${s.leaf.slice(0, 12)}…`, extra(s)]),
        ),
        '',
        `eval      ${summary.eval.records} records (${mb(summary.eval.bytes)} MB), held out from every shard`,
        ...(skew !== undefined
          ? [`skew      ${skew.toFixed(3)} (mean total-variation distance of shard labels)`]
          : []),
        `root      ${manifest.root}`,
        ...(args.out ? [`manifest  ${args.out}`] : []),
      ].join('\n');
    });
  },
};

interface RegisterArgs extends GlobalArgs, ChainArgs, SignerArgs, NetworkArgs {
  manifest: string;
  'manifest-uri'?: string;
  manifestUri?: string;
}

const register: CommandModule<GlobalArgs, RegisterArgs> = {
  command: 'register <manifest>',
  describe: 'Register a dataset on chain (registerDataset) from the manifest `dataset shard --out` wrote',
  builder: (y) =>
    withNetwork(
      withSigner(
        withChain(
          y
            .positional('manifest', {
              type: 'string',
              demandOption: true,
              describe: 'manifest JSON file from `dataset shard --out`',
            })
            .option('manifest-uri', {
              type: 'string',
              describe: 'Where others can fetch the manifest (default: its file:// URL)',
            })
            .example(
              '$0 dataset shard sotu --scheme partition --out sotu.json',
              'shard, and write the manifest',
            )
            .example('$0 dataset register sotu.json --seed //Alice', 'put its root on chain'),
        ),
      ),
    ) as unknown as Argv<RegisterArgs>,
  async handler(args) {
    const log = logger(args);
    let manifest: DatasetManifest;
    try {
      manifest = JSON.parse(readFileSync(args.manifest, 'utf8')) as DatasetManifest;
    } catch (cause) {
      throw new DatasetError(
        'E_DATASET_MANIFEST',
        `cannot read a manifest from ${args.manifest}: ${(cause as Error).message}`,
        { cause },
      );
    }
    // The root is recomputed from the manifest's contents, never taken from the file.
    const fieldsOnChain = registerDatasetFields(
      manifest,
      args.manifestUri ?? pathToFileURL(resolve(args.manifest)).href,
    );
    const signer = await loadSigner(args);
    const network = parseNetworkId(args.network);
    const { inclusion } = await withClient(args, log, (client) =>
      submitChecked(client, { signer, network, calls: [{ type: 'registerDataset', ...fieldsOnChain }] }),
    );
    log.info(
      { dataset: fieldsOnChain.name, root: fieldsOnChain.root, block: inclusion.blockNumber },
      'dataset registered',
    );
    print(args, { ...fieldsOnChain, ...inclusion }, () =>
      [
        `registered ${fieldsOnChain.name}: root ${fieldsOnChain.root}`,
        `  ${fieldsOnChain.records} records in ${fieldsOnChain.shards} shards, ${mb(fieldsOnChain.bytes)} MB, ${fieldsOnChain.license}`,
        `  block #${inclusion.blockNumber} ${inclusion.blockHash}`,
      ].join('\n'),
    );
  },
};

interface VerifyArgs extends ShardArgs {
  root: string;
  manifest?: string;
}

const verify: CommandModule<GlobalArgs, VerifyArgs> = {
  command: 'verify <name>',
  describe:
    'Check local data against a dataset root: with --manifest, every shard and record against its proof; ' +
    'otherwise rebuild the manifest with the given sharding options and compare roots',
  builder: (y) =>
    withSharding(y)
      .option('root', {
        type: 'string',
        demandOption: true,
        describe: 'The dataset root (0x + 64 hex), e.g. from chain',
      })
      .option('manifest', {
        type: 'string',
        describe: 'The manifest JSON (from `dataset shard --out`); its sharding options are used',
      }) as unknown as Argv<VerifyArgs>,
  handler(args) {
    if (!isHex32(args.root.toLowerCase())) {
      throw new DatasetError(
        'E_DATASET_BAD_HASH',
        `--root "${args.root}" is not 0x followed by 64 hex characters`,
      );
    }
    const root = args.root.toLowerCase();
    const ds = load(args, logger(args));
    if (!args.manifest) {
      const manifest = buildManifest(ds, shardWithHints(ds, args));
      if (manifest.root !== root) {
        throw new DatasetError(
          'E_DATASET_ROOT_MISMATCH',
          `${ds.name} with scheme ${args.scheme} hashes to ${manifest.root}, not ${root}; ` +
            'pass --manifest to see which records differ, or check the sharding options',
          { exitCode: 1 },
        );
      }
      print(
        args,
        { ok: true, root, records: ds.records.length, shards: manifest.shards.length },
        () =>
          `ok: ${ds.name} (${ds.records.length} records, ${manifest.shards.length} shards) has root ${root}`,
      );
      return;
    }
    let manifest: DatasetManifest;
    try {
      manifest = JSON.parse(readFileSync(args.manifest, 'utf8')) as DatasetManifest;
    } catch (cause) {
      throw new DatasetError('E_MANIFEST_BAD', `${args.manifest}: cannot read a JSON manifest`, { cause });
    }
    verifyManifest(manifest, root);
    const differing: string[] = [];
    if (manifest.records.length !== ds.records.length) {
      throw new DatasetError(
        'E_DATASET_ROOT_MISMATCH',
        `${ds.name} has ${ds.records.length} records; the manifest for ${root} has ${manifest.records.length}`,
        { exitCode: 1 },
      );
    }
    ds.records.forEach((r, i) => {
      if (recordHash(r) !== manifest.records[i]!.hash) differing.push(`${i} (${r.id})`);
    });
    if (differing.length > 0) {
      throw new DatasetError(
        'E_DATASET_ROOT_MISMATCH',
        `${differing.length} record(s) of ${ds.name} differ from the manifest for ${root}: ` +
          `${differing.slice(0, 10).join(', ')}${differing.length > 10 ? ', …' : ''}`,
        { exitCode: 1 },
      );
    }
    // The worker's own check, shard by shard, then the eval split.
    for (let s = 0; s < manifest.shards.length; s++) {
      verifyShard(root, shardProof(manifest, s), shardRecords(ds, manifest, s));
    }
    verifyShard(root, evalProof(manifest), evalRecords(ds, manifest));
    print(
      args,
      {
        ok: true,
        root,
        records: ds.records.length,
        shards: manifest.shards.length,
        eval: manifest.eval.records.length,
      },
      () =>
        `ok: all ${ds.records.length} records, ${manifest.shards.length} shards and the eval split of ${ds.name} match root ${root}`,
    );
  },
};

export const datasetCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'dataset',
  describe: 'Corpora, sharding and dataset provenance (Merkle roots and proofs)',
  builder: (y) =>
    y
      .command(list)
      .command(inspect as unknown as CommandModule<GlobalArgs, GlobalArgs>)
      .command(shard as unknown as CommandModule<GlobalArgs, GlobalArgs>)
      .command(verify as unknown as CommandModule<GlobalArgs, GlobalArgs>)
      .command(register as unknown as CommandModule<GlobalArgs, GlobalArgs>)
      .demandCommand(1, 'Name a dataset command: list, inspect, shard or verify.'),
  handler() {},
};
