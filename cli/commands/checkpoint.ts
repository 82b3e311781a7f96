// `fedtune checkpoint list | download | verify | attest`: what a consumer (and an attesting member)
// does with the checkpoints the chain names — find them, fetch them from anyone, verify every byte, see where they came from.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
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
import type { ChainClient, NetworkState } from '../../pallet-bindings/index.ts';
import { FedtuneError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { processIo, withChain, type ChainArgs, type GlobalArgs, type Io } from '../options.ts';
import {
  logger,
  networkOf,
  parseHex32,
  parseNetworkId,
  print,
  readState,
  withClient,
  withNetwork,
  type NetworkArgs,
} from '../protocol.ts';
import { fields, short, table } from '../table.ts';
import { attest } from './checkpoint-attest.ts';

export type Base = GlobalArgs & ChainArgs & NetworkArgs;
const PROVENANCE_FILE = 'provenance.json';
const CONFIG_FILE = 'config.json';

export async function loadNetwork(client: ChainClient, args: Base): Promise<NetworkState> {
  const network = parseNetworkId(args.network);
  return networkOf(await readState(client, { network, from: args.from }), network);
}

export function record(net: NetworkState, id: string) {
  const c = net.checkpoints[id as `0x${string}`];
  if (!c)
    throw new FedtuneError('E_UNKNOWN_CHECKPOINT', `no checkpoint ${id} is committed in network ${net.name}`);
  return c;
}

/**
 * A one-line progress bar when the command writes to this process's stderr and that is a terminal; nothing otherwise
 * (the downloader logs), e.g. for a command the demo runs in its own process with its output captured.
 */
function progressBar(label: string, io: Io | undefined): { update(p: DownloadProgress): void; done(): void } {
  const tty = (io ?? processIo) === processIo && process.stderr.isTTY === true;
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
  io?: Io,
): Promise<{ provenance: Provenance; bytes: Uint8Array }> {
  const c = record(net, id);
  await mkdir(outDir, { recursive: true });
  const bar = progressBar(`download ${short(id)}`, io);
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
      const { provenance } = await fetchInto(client, net, id, out, args.source, log, args.io);
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
