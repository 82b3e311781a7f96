// `fedtune checkpoint list | download | verify | attest`: what a consumer (and an attesting member)
// does with the checkpoints the chain names — find them, fetch them from anyone, verify every byte, see where they came from.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import {
  CHECKPOINT_FILE,
  MANIFEST_FILE,
  buildProvenance,
  downloadCheckpoint,
  httpSource,
  listCheckpoints,
  parseSource,
  sha256Hex,
  verifyCheckpointDir,
  type DownloadProgress,
  type Provenance,
} from '../../checkpoints/index.ts';
import { datasetForManifest, fetchManifest } from '../../datasets/index.ts';
import type { BackendChoice } from '../../model/index.ts';
import type { ChainClient, NetworkState, RoundProposal } from '../../pallet-bindings/index.ts';
import type { VerifyReport } from '../../verify/index.ts';
import { BACKEND_CHOICES } from '../choices.ts';
import { FedtuneError } from '../errors.ts';
import { loadSigner, withSigner, type SignerArgs } from '../keys.ts';
import type { Logger } from '../log.ts';
import { withChain, type ChainArgs, type GlobalArgs } from '../options.ts';
import {
  logger,
  networkOf,
  parseHex32,
  parseFailureCode,
  parseNetworkId,
  print,
  readState,
  submitChecked,
  usage,
  withClient,
  withNetwork,
  type NetworkArgs,
} from '../protocol.ts';
import { fields, short, table } from '../table.ts';

type Base = GlobalArgs & ChainArgs & NetworkArgs;
const PROVENANCE_FILE = 'provenance.json';
const CONFIG_FILE = 'config.json';

async function loadNetwork(client: ChainClient, args: Base): Promise<NetworkState> {
  const network = parseNetworkId(args.network);
  return networkOf(await readState(client, { network, from: args.from }), network);
}

export function record(net: NetworkState, id: string) {
  const c = net.checkpoints[id as `0x${string}`];
  if (!c)
    throw new FedtuneError('E_UNKNOWN_CHECKPOINT', `no checkpoint ${id} is committed in network ${net.name}`);
  return c;
}

/** A one-line progress bar on a terminal; nothing otherwise (the downloader logs). */
function progressBar(label: string): { update(p: DownloadProgress): void; done(): void } {
  const tty = process.stderr.isTTY === true;
  const started = Date.now();
  return {
    update(p) {
      if (!tty) return;
      const seconds = Math.max(0.001, (Date.now() - started) / 1000);
      const width = 24;
      const filled = Math.round((p.bytesDone / Math.max(1, p.bytesTotal)) * width);
      process.stderr.write(
        `\r\x1b[2K${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(p.bytesDone / 1e6).toFixed(2)}/${(p.bytesTotal / 1e6).toFixed(2)} MB  ${(p.bytesDone / 1e6 / seconds).toFixed(1)} MB/s`,
      );
    },
    done() {
      if (tty) process.stderr.write('\n');
    },
  };
}

/**
 * Downloads checkpoint `id` into `outDir` from the uri the chain names plus any extra sources, verifying every chunk
 * against the on-chain id, then writes config.json and provenance.json beside it.
 */
export async function fetchInto(
  client: ChainClient,
  net: NetworkState,
  id: string,
  outDir: string,
  extraSources: string[],
  log: Logger,
): Promise<{ provenance: Provenance; bytes: Uint8Array }> {
  const c = record(net, id);
  await mkdir(outDir, { recursive: true });
  const bar = progressBar(`download ${short(id)}`);
  try {
    await downloadCheckpoint({
      id,
      sources: [...(c.uri ? [httpSource(c.uri)] : []), ...extraSources.map((s) => parseSource(s))],
      outDir,
      logger: log,
      onProgress: (p) => bar.update(p),
    });
  } finally {
    bar.done();
  }
  const bytes = new Uint8Array(await readFile(join(outDir, CHECKPOINT_FILE)));
  const { readSafetensors } = await import('../../model/index.ts');
  const config = readSafetensors(bytes).metadata['fedtune.config'];
  if (config !== undefined)
    await writeFile(join(outDir, CONFIG_FILE), `${JSON.stringify(JSON.parse(config), null, 2)}\n`);
  const provenance = await provenanceOf(client, net, id);
  await writeFile(join(outDir, PROVENANCE_FILE), `${JSON.stringify(provenance, null, 2)}\n`);
  return { provenance, bytes };
}

function provenanceOf(client: ChainClient, net: NetworkState, id: string): Promise<Provenance> {
  return buildProvenance(net, id, client.genesisHash, async (n) =>
    (await client.api.rpc.chain.getBlockHash(n)).toHex(),
  );
}

// ---- list -------------------------------------------------------------------------------------------

interface ListArgs extends Base {
  certified: boolean;
  wide: boolean;
}

const list: CommandModule<GlobalArgs, ListArgs> = {
  command: 'list',
  describe: 'Checkpoints committed on chain: round, kind, parent, eval loss, attestations, certified',
  builder: (y) =>
    withNetwork(withChain(y))
      .option('certified', {
        type: 'boolean',
        default: false,
        describe: 'Only certified checkpoints',
      })
      .option('wide', {
        type: 'boolean',
        default: false,
        describe:
          'Parent ids in full too (the id column is always whole: attest, download and generate take it)',
      }) as unknown as Argv<ListArgs>,
  async handler(args) {
    await withClient(args, logger(args), async (client) => {
      const rows = listCheckpoints(await loadNetwork(client, args), { certified: args.certified });
      print(args, rows, () =>
        table(
          // The id whole and last, where its 66 characters do not push the other columns apart.
          [
            'proposal',
            'round',
            'kind',
            'eval loss',
            'attests',
            'certified',
            'block',
            'parent',
            'refused',
            'id',
          ],
          rows.map((r) => [
            r.proposal,
            r.round,
            r.kind,
            r.evalLoss.toFixed(4),
            `${r.attestations.positive}/${r.attestations.total}`,
            r.certified ? 'yes' : 'no',
            r.block,
            r.parent ? (args.wide ? r.parent : short(r.parent)) : '-',
            refusals(r.refusals),
            r.id,
          ]),
        ),
      );
    });
  },
};

/** The "no" attests of a checkpoint, one phrase each: `no: E_AGGREGATE_MISMATCH (5FHneW46…94ty)`. */
export function refusals(list: { account: string; code: string | null }[]): string {
  if (list.length === 0) return '-';
  return list.map((r) => `no: ${r.code ?? '(no code)'} (${short(r.account)})`).join(', ');
}

// ---- download ---------------------------------------------------------------------------------------

interface DownloadArgs extends Base {
  id: string;
  out: string;
  source: string[];
}

const download: CommandModule<GlobalArgs, DownloadArgs> = {
  command: 'download <id>',
  describe:
    'Fetch a checkpoint (parallel, resumable), verify every chunk against the chain, write its provenance',
  builder: (y) =>
    withNetwork(withChain(y))
      .positional('id', { type: 'string', demandOption: true, describe: 'Checkpoint id (0x + 64 hex)' })
      .option('out', {
        type: 'string',
        demandOption: true,
        describe: 'Folder for model.safetensors, config.json, provenance.json',
      })
      .option('source', {
        type: 'string',
        array: true,
        default: [] as string[],
        describe:
          'Extra source: a fedtune server URL, or "MANIFEST_TEMPLATE|CHUNK_TEMPLATE" (see docs/checkpoints.md)',
      }) as unknown as Argv<DownloadArgs>,
  async handler(args) {
    const id = parseHex32('the checkpoint id', args.id);
    const log = logger(args);
    await withClient(args, log, async (client) => {
      const net = await loadNetwork(client, args);
      const out = resolve(args.out);
      const { provenance } = await fetchInto(client, net, id, out, args.source, log);
      print(args, { dir: out, ...provenance }, () =>
        [
          fields([
            ['checkpoint', id],
            ['folder', out],
            ['bytes', provenance.checkpoint.bytes],
            ['certified', provenance.checkpoint.certified ? 'yes' : 'no'],
          ]),
          '',
          describeLineage(provenance),
        ].join('\n'),
      );
    });
  },
};

function describeLineage(p: Provenance): string {
  return table(
    ['checkpoint', 'kind', 'proposal', 'round', 'dataset', 'contributors', 'eval loss', 'block'],
    p.lineage.map((r) => [
      short(r.checkpoint),
      r.kind,
      r.proposal,
      r.round,
      `${r.dataset.name} ${short(r.dataset.root)}`,
      r.contributors.map((c) => `${short(c.account, 6)}:${c.samples}`).join(' '),
      r.metrics.evalLoss.toFixed(4),
      `${r.block} ${short(r.blockHash)}`,
    ]),
  );
}

// ---- verify -----------------------------------------------------------------------------------------

interface VerifyArgs extends Base {
  dir: string;
  id?: string;
}

/** A folder's provenance.json, or null when it has none. */
export async function readProvenance(dir: string): Promise<Provenance | null> {
  let text: string;
  try {
    text = await readFile(join(dir, PROVENANCE_FILE), 'utf8');
  } catch {
    return null;
  }
  try {
    const p = JSON.parse(text) as Provenance;
    if (typeof p?.checkpoint?.id !== 'string' || !Array.isArray(p.lineage))
      throw new Error('expected { checkpoint: { id }, lineage: [...] }');
    return p;
  } catch (cause) {
    throw new FedtuneError(
      'E_BAD_PROVENANCE',
      `${join(dir, PROVENANCE_FILE)} is not a provenance record: ${(cause as Error).message}`,
      { cause },
    );
  }
}

/**
 * The id a folder is checked against: --id, else provenance.json's, else the hash of its manifest.json (which only
 * proves the folder is self-consistent until the chain is asked whether that id was committed).
 */
export async function idOf(dir: string, given?: string): Promise<string> {
  if (given !== undefined) return parseHex32('--id', given);
  const provenance = await readProvenance(dir);
  if (provenance) return parseHex32(`the id in ${PROVENANCE_FILE}`, provenance.checkpoint.id);
  try {
    return sha256Hex(new Uint8Array(await readFile(join(dir, MANIFEST_FILE))));
  } catch {
    throw new FedtuneError(
      'E_NOT_A_CHECKPOINT_DIR',
      `${dir} has neither ${PROVENANCE_FILE} nor ${MANIFEST_FILE}; is it a folder from \`checkpoint download\`?`,
    );
  }
}

const verify: CommandModule<GlobalArgs, VerifyArgs> = {
  command: 'verify <dir>',
  describe:
    'Re-check a downloaded checkpoint: every byte against the on-chain id, and its provenance against the chain',
  builder: (y) =>
    withNetwork(withChain(y))
      .positional('dir', {
        type: 'string',
        demandOption: true,
        describe: 'Folder written by `checkpoint download`',
      })
      .option('id', {
        type: 'string',
        describe: 'The checkpoint id (default: from provenance.json)',
      }) as unknown as Argv<VerifyArgs>,
  async handler(args) {
    const dir = resolve(args.dir);
    const id = await idOf(dir, args.id);
    const manifest = await verifyCheckpointDir(dir, id);
    await withClient(args, logger(args), async (client) => {
      const net = await loadNetwork(client, args);
      const c = record(net, id);
      if (c.bytes !== manifest.size)
        throw new FedtuneError(
          'E_SIZE_MISMATCH',
          `the chain says ${c.bytes} bytes; the manifest ${manifest.size}`,
        );
      const onChain = await provenanceOf(client, net, id);
      const local = await readProvenance(dir);
      const sameLineage =
        local === null ||
        JSON.stringify(local.lineage.map((r) => [r.checkpoint, r.blockHash])) ===
          JSON.stringify(onChain.lineage.map((r) => [r.checkpoint, r.blockHash]));
      if (!sameLineage)
        throw new FedtuneError(
          'E_PROVENANCE_MISMATCH',
          `${PROVENANCE_FILE} does not match the chain's record of ${id}`,
        );
      const result = {
        id,
        dir,
        bytes: manifest.size,
        chunks: manifest.chunks.length,
        certified: c.certified,
        verified: true,
      };
      print(
        args,
        result,
        () =>
          `verified: ${manifest.chunks.length} chunk(s), ${manifest.size} bytes match checkpoint ${id}, committed in block ${c.block}; ${c.certified ? 'certified' : 'NOT certified'}`,
      );
    });
  },
};

/** The code a "no" carries when none is given: the one check `attest` itself makes is the held-out loss. */
const DEFAULT_NO_CODE = 'E_EVAL_MISMATCH';

// ---- attest -----------------------------------------------------------------------------------------

interface AttestArgs extends Base, SignerArgs {
  id: string;
  out?: string;
  data?: string;
  maxExamples: number;
  verdict: 'auto' | 'yes' | 'no';
  maxLoss?: number;
  code?: string;
  backend: BackendChoice;
  recompute: number;
  verify: boolean;
  source: string[];
}

const attest: CommandModule<GlobalArgs, AttestArgs> = {
  command: 'attest <id>',
  describe:
    "Download a checkpoint, evaluate it on its dataset's held-out split and attest the measured loss (members)",
  builder: (y) =>
    withSigner(withNetwork(withChain(y)))
      .positional('id', { type: 'string', demandOption: true, describe: 'Checkpoint id (0x + 64 hex)' })
      .option('out', { type: 'string', describe: 'Where to download it (default a cache folder)' })
      .option('data', { type: 'string', describe: 'Local copy of a dataset that is not built in' })
      .option('max-examples', {
        type: 'number',
        default: 256,
        describe: 'Held-out examples scored (evenly spaced)',
      })
      .option('verdict', {
        choices: ['auto', 'yes', 'no'] as const,
        default: 'auto' as const,
        describe:
          'auto: yes when the measured loss is finite, within --max-loss, and within 5% (+0.05) of the loss the coordinator committed',
      })
      .option('max-loss', { type: 'number', describe: 'auto: the highest acceptable eval loss' })
      .option('code', {
        type: 'string',
        describe:
          'Why a "no": the failed check\'s code (A-Z, 0-9, _; at most 32), like E_AGGREGATE_MISMATCH; default E_EVAL_MISMATCH, the loss check attest makes itself',
      })
      .option('backend', {
        choices: BACKEND_CHOICES,
        default: 'auto' as BackendChoice,
      })
      .option('verify', {
        type: 'boolean',
        default: true,
        describe:
          "Verify the checkpoint's round first (`round verify`: its aggregate from the published updates); a failed check attests no with its code. --no-verify attests on the measured loss alone",
      })
      .option('recompute', {
        type: 'number',
        default: 1,
        describe: 'Contributions the verification re-executes',
      })
      .option('source', {
        type: 'string',
        array: true,
        default: [] as string[],
        describe: "More base URLs serving the round's /rounds, /blobs and /checkpoints",
      })
      .check((argv) => {
        const r = argv.recompute as number;
        if (!(Number.isSafeInteger(r) && r >= 0))
          throw usage(`--recompute must be a whole number >= 0, got ${r}`);
        const n = argv.maxExamples as number;
        if (!(Number.isInteger(n) && n >= 1))
          throw usage(`--max-examples must be a whole number >= 1, got ${n}`);
        const max = argv.maxLoss as number | undefined;
        if (max !== undefined && !Number.isFinite(max))
          throw usage(`--max-loss must be a number, got ${max}`);
        if (argv.code !== undefined && argv.verdict === 'yes')
          throw usage('--code says why a verdict is no; --verdict yes takes none');
        return true;
      }) as unknown as Argv<AttestArgs>,
  async handler(args) {
    const { disposeModel, initBackend, modelFromSafetensors } = await import('../../model/index.ts');
    const { evaluateHeldOut } = await import('../../coordinator/index.ts');
    const id = parseHex32('the checkpoint id', args.id);
    const code = await parseFailureCode(args.code ?? DEFAULT_NO_CODE);
    const log = logger(args);
    const signer = await loadSigner(args);
    await initBackend({ backend: args.backend, logger: log });
    await withClient(args, log, async (client) => {
      const net = await loadNetwork(client, args);
      const c = record(net, id);
      // Checked before the download and evaluation, which take a while, rather than by the chain afterwards.
      if (!net.members.includes(signer.address))
        throw new FedtuneError('E_NOT_MEMBER', `${signer.address} is not a member of network ${net.name}`);
      if (c.attests[signer.address] !== undefined)
        throw new FedtuneError('E_DOUBLE_ATTEST', `${signer.address} already attested ${id}`);
      const p = net.proposals[c.proposal] as RoundProposal;
      const reported = p.finalized[c.round]!.metrics.evalLoss;
      const out = resolve(args.out ?? join(homedir(), '.cache', 'fedtune', 'checkpoints', id.slice(2)));
      // The round first: a checkpoint that is not the aggregate of its published updates is attested no, with why.
      let verification: VerifyReport | null = null;
      if (args.verify) {
        const { verifyRound } = await import('../../verify/index.ts');
        const { reexecuteContribution } = await import('../../worker/index.ts');
        verification = await verifyRound({
          net,
          network: parseNetworkId(args.network),
          proposal: c.proposal,
          round: c.round,
          blockHash: async (n) => (await client.api.rpc.chain.getBlockHash(n)).toHex(),
          sources: args.source,
          recompute: args.recompute,
          reexecute: reexecuteContribution,
          data: args.data,
          cacheDir: join(out, 'verify'),
          logger: log,
          onStep: (s) => log.info({ step: s.step, ok: s.ok, ms: Math.round(s.ms) }, s.detail),
        });
      }
      const { bytes } = await fetchInto(client, net, id, out, [], log);
      const dataset = net.datasets[p.round.dataset];
      if (!dataset)
        throw new FedtuneError('E_UNKNOWN_DATASET', `dataset ${p.round.dataset} is not registered`);
      const manifest = await fetchManifest(dataset.manifestUri, p.round.dataset);
      const model = modelFromSafetensors(bytes);
      let measured: number;
      try {
        measured = (
          await evaluateHeldOut(model, datasetForManifest(manifest, args.data), manifest, {
            maxExamples: args.maxExamples,
          })
        ).loss;
      } finally {
        disposeModel(model);
      }
      const ok =
        (verification === null || verification.ok) &&
        Number.isFinite(measured) &&
        (args.maxLoss === undefined || measured <= args.maxLoss) &&
        measured <= reported * 1.05 + 0.05;
      const verdict = args.verdict === 'auto' ? ok : args.verdict === 'yes';
      // A failed verification names its own code; otherwise a "no" is --code's (the loss check's by default).
      const noCode = verification && !verification.ok ? verification.code! : code;
      const { inclusion, state } = await submitChecked(
        client,
        {
          signer,
          network: parseNetworkId(args.network),
          // A "no" carries its failure code (attestWithCode on chain); a "yes" none.
          calls: [
            { type: 'attest', checkpoint: id, evalLoss: measured, verdict, code: verdict ? null : noCode },
          ],
        },
        args.from,
      );
      const after = networkOf(state, parseNetworkId(args.network)).checkpoints[id]!;
      const result = {
        id,
        evalLoss: measured,
        reportedEvalLoss: reported,
        verdict,
        code: verdict ? null : noCode,
        ...(verification ? { verification } : {}),
        certified: after.certified,
        ...inclusion,
      };
      print(args, result, () =>
        fields([
          ['checkpoint', id],
          ['measured loss', measured.toFixed(4)],
          ['reported loss', reported.toFixed(4)],
          [
            'verification',
            verification === null
              ? 'skipped (--no-verify)'
              : verification.ok
                ? `verified in ${verification.seconds.toFixed(1)} s (${verification.recomputed.length} re-executed)`
                : `FAILED [${verification.code}]: ${verification.message}`,
          ],
          ['verdict', verdict ? 'yes' : `no: ${noCode}`],
          ['block', inclusion.blockNumber],
          ['certified', after.certified ? `yes (block ${after.certifiedAt})` : 'not yet'],
        ]),
      );
    });
  },
};

export const checkpointCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'checkpoint',
  describe: 'Checkpoints on chain: list, download and verify every byte, attest (members)',
  builder: (y) =>
    y
      .command(list)
      .command(download)
      .command(verify)
      .command(attest)
      .demandCommand(1, 'Name a checkpoint command: list, download, verify or attest.'),
  handler() {},
};

// ---- generate ---------------------------------------------------------------------------------------
