// Dataset provenance: the manifest (records, shards, eval split, licence, source, tokenizer), its Merkle root, and proofs.
import { createHash } from 'node:crypto';
import { DatasetError } from './errors.ts';
import {
  type Hex32,
  type MerkleProof,
  fromHex,
  isHex32,
  leafHash,
  merkleLevels,
  merkleProof,
  rootFromProof,
  toHex,
} from '../merkle/index.ts';
import type { RegisterDataset } from '../pallet-bindings/index.ts';
import type { ShardPlan, ShardScheme } from './sharding.ts';
import { TOKENIZER_ID } from './tokenizer.ts';
import type { Dataset, DatasetRecord } from './types.ts';

export const MANIFEST_FORMAT = 'fedtune-dataset-v1';

/** The type byte that starts each leaf's data (after the 0x00 leaf prefix). */
export const LEAF_TAG = { header: 0x10, record: 0x11, shard: 0x12, eval: 0x13 } as const;

export interface ManifestRecord {
  id: string;
  /** recordHash(record): SHA-256 over id, label and text. */
  hash: Hex32;
  /** UTF-8 bytes of the text, which is also its token count under the byte-level tokenizer. */
  bytes: number;
  label?: string;
}

export interface ManifestShard {
  index: number;
  /** Indices into `records`, ascending. */
  records: number[];
  bytes: number;
  /** The shard's Merkle leaf hash: a short id for the shard that binds its records. */
  leaf: Hex32;
  /** partition: the key value(s) this shard holds. */
  key?: string;
}

export interface DatasetManifest {
  format: typeof MANIFEST_FORMAT;
  name: string;
  description: string;
  license: string;
  source: string;
  tokenizer: string;
  labels?: string[];
  /** Total UTF-8 bytes over all records. */
  bytes: number;
  sharding: { scheme: ShardScheme; seed: number; evalFraction: number; alpha?: number; by?: string };
  records: ManifestRecord[];
  shards: ManifestShard[];
  /** The held-out split no worker trains on. */
  eval: { records: number[]; bytes: number; leaf: Hex32 };
  /** Merkle root over header, record, shard and eval leaves: the dataset's id. */
  root: Hex32;
}

export interface RecordProof extends MerkleProof {
  kind: 'record';
  record: number;
}

/** Proves a shard's (or the eval split's) record list; carries the record hashes so a mismatch can be named. */
export interface ShardProof extends MerkleProof {
  kind: 'shard' | 'eval';
  /** The shard index; -1 for the eval split. */
  shard: number;
  records: { index: number; hash: Hex32 }[];
}

// ---- byte encoding (documented in docs/datasets.md) ----

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0);
  return b;
}
function u64(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n));
  return b;
}
const utf8 = new TextEncoder();
function str(s: string): Uint8Array {
  const bytes = utf8.encode(s);
  return concat([u32(bytes.length), bytes]);
}
function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** SHA-256( str(id) || (0x00 | 0x01 || str(label)) || u32(byteLength(text)) || text ) as 0x-hex. */
export function recordHash(record: DatasetRecord): Hex32 {
  const h = createHash('sha256');
  h.update(str(record.id));
  h.update(record.label === undefined ? Uint8Array.of(0) : concat([Uint8Array.of(1), str(record.label)]));
  h.update(u32(Buffer.byteLength(record.text, 'utf8')));
  h.update(record.text, 'utf8');
  return toHex(new Uint8Array(h.digest()));
}

type HeaderFields = Pick<
  DatasetManifest,
  'name' | 'description' | 'license' | 'source' | 'tokenizer' | 'labels' | 'bytes' | 'sharding'
> & { recordCount: number; shardCount: number };

function headerLeafData(h: HeaderFields): Uint8Array {
  const labels = h.labels ?? [];
  const s = h.sharding;
  return concat([
    Uint8Array.of(LEAF_TAG.header),
    str(MANIFEST_FORMAT),
    str(h.name),
    str(h.description),
    str(h.license),
    str(h.source),
    str(h.tokenizer),
    u32(labels.length),
    ...labels.map(str),
    u32(h.recordCount),
    u64(h.bytes),
    str(s.scheme),
    str(String(s.seed)),
    str(String(s.evalFraction)),
    str(s.alpha === undefined ? '' : String(s.alpha)),
    str(s.by ?? ''),
    u32(h.shardCount),
  ]);
}

function recordLeafData(index: number, hash: Hex32): Uint8Array {
  const out = new Uint8Array(1 + 4 + 32);
  out[0] = LEAF_TAG.record;
  new DataView(out.buffer).setUint32(1, index);
  out.set(fromHex(hash), 5);
  return out;
}

function listLeafData(tag: number, shard: number | undefined, entries: { index: number; hash: Hex32 }[]) {
  // One buffer written in place: a big shard's leaf is built per verification, so no per-entry arrays.
  const head = 1 + (shard === undefined ? 0 : 4) + 4;
  const out = new Uint8Array(head + 36 * entries.length);
  const view = new DataView(out.buffer);
  out[0] = tag;
  if (shard !== undefined) view.setUint32(1, shard);
  view.setUint32(head - 4, entries.length);
  entries.forEach((e, k) => {
    view.setUint32(head + 36 * k, e.index);
    out.set(fromHex(e.hash), head + 36 * k + 4);
  });
  return out;
}

// ---- building ----

/** Hashes every record and builds the manifest of `dataset` split by `plan`. */
export function buildManifest(dataset: Dataset, plan: ShardPlan): DatasetManifest {
  const records: ManifestRecord[] = dataset.records.map((r) => ({
    id: r.id,
    hash: recordHash(r),
    bytes: Buffer.byteLength(r.text, 'utf8'),
    ...(r.label === undefined ? {} : { label: r.label }),
  }));
  const sum = (idx: number[]) => idx.reduce((a, i) => a + records[i]!.bytes, 0);
  const partial = {
    format: MANIFEST_FORMAT,
    name: dataset.name,
    description: dataset.description,
    license: dataset.license,
    source: dataset.source,
    tokenizer: TOKENIZER_ID,
    ...(dataset.labels ? { labels: dataset.labels } : {}),
    bytes: records.reduce((a, r) => a + r.bytes, 0),
    sharding: {
      scheme: plan.scheme,
      seed: plan.seed,
      evalFraction: plan.evalFraction,
      ...(plan.alpha === undefined ? {} : { alpha: plan.alpha }),
      ...(plan.by === undefined ? {} : { by: plan.by }),
    },
    records,
    shards: plan.shards.map((idx, index) => ({
      index,
      records: idx,
      bytes: sum(idx),
      leaf: '0x' as Hex32,
      ...(plan.keys ? { key: plan.keys[index]! } : {}),
    })),
    eval: { records: plan.eval, bytes: sum(plan.eval), leaf: '0x' as Hex32 },
    root: '0x' as Hex32,
  } satisfies DatasetManifest;
  const tree = treeOf(partial);
  partial.shards.forEach((s, i) => (s.leaf = toHex(tree.leaves[tree.shardLeaf(i)]!)));
  partial.eval.leaf = toHex(tree.leaves[tree.evalLeaf]!);
  partial.root = tree.root;
  return partial;
}

interface Tree {
  leaves: Uint8Array[];
  levels: Uint8Array[][];
  root: Hex32;
  shardLeaf(shard: number): number;
  evalLeaf: number;
}

// Proofs for many shards of one manifest share one tree; manifests are treated as immutable once built.
const trees = new WeakMap<DatasetManifest, Tree>();

/** Leaf order: header, records 0..n-1, shards 0..k-1, eval. */
function treeOf(m: DatasetManifest, cache = true): Tree {
  const cached = cache ? trees.get(m) : undefined;
  if (cached) return cached;
  checkShape(m);
  const n = m.records.length;
  const entries = (idx: number[]) => idx.map((index) => ({ index, hash: m.records[index]!.hash }));
  const leaves = [
    headerLeafData({ ...m, recordCount: n, shardCount: m.shards.length }),
    ...m.records.map((r, i) => recordLeafData(i, r.hash)),
    ...m.shards.map((s, i) => listLeafData(LEAF_TAG.shard, i, entries(s.records))),
    listLeafData(LEAF_TAG.eval, undefined, entries(m.eval.records)),
  ].map(leafHash);
  const levels = merkleLevels(leaves);
  const tree: Tree = {
    leaves,
    levels,
    root: toHex(levels[levels.length - 1]![0]!),
    shardLeaf: (s) => 1 + n + s,
    evalLeaf: 1 + n + m.shards.length,
  };
  trees.set(m, tree);
  return tree;
}

function checkShape(m: DatasetManifest): void {
  const badManifest = (why: string): never => {
    throw new DatasetError('E_MANIFEST_BAD', `manifest ${m?.name ?? ''}: ${why}`);
  };
  if (typeof m !== 'object' || m === null) badManifest('not an object');
  if (m.format !== MANIFEST_FORMAT) badManifest(`format is "${m.format}"; expected "${MANIFEST_FORMAT}"`);
  if (!Array.isArray(m.records) || !Array.isArray(m.shards) || typeof m.eval !== 'object' || !m.sharding) {
    badManifest('needs records, shards, eval and sharding');
  }
  // Every field the root hashes is checked for its type first: a manifest is read from anywhere (fuzzing found these).
  for (const key of ['name', 'description', 'license', 'source', 'tokenizer'] as const) {
    if (typeof m[key] !== 'string') badManifest(`${key} must be a string`);
  }
  if (m.labels !== undefined && !(Array.isArray(m.labels) && m.labels.every((l) => typeof l === 'string')))
    badManifest('labels must be a list of strings');
  if (!Number.isSafeInteger(m.bytes) || m.bytes < 0) badManifest('bytes must be a whole number');
  if (typeof m.sharding !== 'object' || typeof m.sharding.scheme !== 'string')
    badManifest('sharding needs a scheme');
  if (m.sharding.by !== undefined && typeof m.sharding.by !== 'string')
    badManifest('sharding.by must be a string');
  m.records.forEach((r, i) => {
    if (typeof r !== 'object' || r === null || !isHex32(r.hash))
      badManifest(`record ${i} has no 32-byte hash`);
  });
  if (m.eval === null || !Array.isArray(m.eval.records)) badManifest('eval needs its records');
  m.shards.forEach((sh, i) => {
    if (typeof sh !== 'object' || sh === null) badManifest(`shard ${i} is not an object`);
  });
  const n = m.records.length;
  for (const list of [...m.shards.map((s) => s.records), m.eval.records]) {
    if (!Array.isArray(list) || !list.every((i) => Number.isInteger(i) && i >= 0 && i < n)) {
      badManifest('a shard or the eval split names a record that does not exist');
    }
  }
}

/** Recomputes the root from the manifest's contents (its own `root` field is not trusted). */
export function manifestRoot(manifest: DatasetManifest): Hex32 {
  return treeOf(manifest, false).root;
}

/** Throws E_MANIFEST_ROOT_MISMATCH unless the manifest's contents hash to `root` (e.g. the on-chain root). */
export function verifyManifest(manifest: DatasetManifest, root: Hex32 | string): void {
  const computed = manifestRoot(manifest);
  if (computed !== root.toLowerCase()) {
    throw new DatasetError(
      'E_MANIFEST_ROOT_MISMATCH',
      `manifest ${manifest.name} hashes to ${computed}; expected root ${root}`,
      { exitCode: 1, details: { computed, expected: root } },
    );
  }
}

// ---- proofs ----

export function recordProof(manifest: DatasetManifest, record: number): RecordProof {
  const tree = treeOf(manifest);
  if (!(record >= 0 && record < manifest.records.length)) {
    throw new DatasetError(
      'E_DATASET_BAD_INDEX',
      `record ${record} is not in 0..${manifest.records.length - 1}`,
    );
  }
  return { kind: 'record', record, ...merkleProof(tree.levels, 1 + record) };
}

export function shardProof(manifest: DatasetManifest, shard: number): ShardProof {
  const tree = treeOf(manifest);
  const s = manifest.shards[shard];
  if (!s)
    throw new DatasetError('E_SHARD_BAD_INDEX', `shard ${shard} is not in 0..${manifest.shards.length - 1}`);
  return {
    kind: 'shard',
    shard,
    records: s.records.map((index) => ({ index, hash: manifest.records[index]!.hash })),
    ...merkleProof(tree.levels, tree.shardLeaf(shard)),
  };
}

/** Proof of the held-out eval split, checked with verifyShard like any shard. */
export function evalProof(manifest: DatasetManifest): ShardProof {
  const tree = treeOf(manifest);
  return {
    kind: 'eval',
    shard: -1,
    records: manifest.eval.records.map((index) => ({ index, hash: manifest.records[index]!.hash })),
    ...merkleProof(tree.levels, tree.evalLeaf),
  };
}

/** True when `record` is record `proof.record` of the dataset whose root is `root`. */
export function verifyRecord(root: Hex32 | string, proof: RecordProof, record: DatasetRecord): boolean {
  const leaf = leafHash(recordLeafData(proof.record, recordHash(record)));
  const computed = rootFromProof(leaf, proof);
  return computed !== undefined && toHex(computed) === root.toLowerCase();
}

/**
 * The worker's check before training: `records` (in the proof's order) are exactly the shard the proof
 * names, under `root`. Throws E_SHARD_MISMATCH naming the shard and the first record that differs.
 */
export function verifyShard(root: Hex32 | string, proof: ShardProof, records: DatasetRecord[]): void {
  const what = proof.kind === 'eval' ? 'eval split' : `shard ${proof.shard}`;
  const tag = proof.kind === 'eval' ? LEAF_TAG.eval : LEAF_TAG.shard;
  let computed: Uint8Array | undefined;
  try {
    const leaf = leafHash(listLeafData(tag, proof.kind === 'eval' ? undefined : proof.shard, proof.records));
    computed = rootFromProof(leaf, proof);
  } catch {
    computed = undefined;
  }
  if (computed === undefined || toHex(computed) !== root.toLowerCase()) {
    throw new DatasetError(
      'E_SHARD_MISMATCH',
      `${what}: its proof does not lead to root ${root}; the manifest or proof is not for this dataset`,
      { exitCode: 1, details: { shard: proof.shard, root } },
    );
  }
  if (records.length !== proof.records.length) {
    throw new DatasetError(
      'E_SHARD_MISMATCH',
      `${what}: got ${records.length} records; the registered shard has ${proof.records.length}`,
      { exitCode: 1, details: { shard: proof.shard, expected: proof.records.length, got: records.length } },
    );
  }
  records.forEach((r, i) => {
    const expected = proof.records[i]!;
    const got = recordHash(r);
    if (got !== expected.hash) {
      throw new DatasetError(
        'E_SHARD_MISMATCH',
        `${what}: record ${expected.index} (id "${r.id}", position ${i} in the shard) hashes to ${got}; the registered dataset has ${expected.hash}`,
        { exitCode: 1, details: { shard: proof.shard, record: expected.index, id: r.id, position: i } },
      );
    }
  });
}

/** Records of shard `shard` of `dataset`, in the order its proof lists them. */
export function shardRecords(dataset: Dataset, manifest: DatasetManifest, shard: number): DatasetRecord[] {
  const s = manifest.shards[shard];
  if (!s)
    throw new DatasetError('E_SHARD_BAD_INDEX', `shard ${shard} is not in 0..${manifest.shards.length - 1}`);
  return s.records.map((i) => dataset.records[i]!);
}

export function evalRecords(dataset: Dataset, manifest: DatasetManifest): DatasetRecord[] {
  return manifest.eval.records.map((i) => dataset.records[i]!);
}

// ---- on chain ----

/** Exactly the fields of the protocol's `registerDataset` call: pallet-bindings' own type. */
export type RegisterDatasetFields = RegisterDataset;

/** The `registerDataset` fields for a manifest served at `manifestUri`; the root is recomputed, not copied. */
export function registerDatasetFields(manifest: DatasetManifest, manifestUri: string): RegisterDatasetFields {
  return {
    name: manifest.name,
    root: manifestRoot(manifest),
    records: manifest.records.length,
    shards: manifest.shards.length,
    bytes: manifest.bytes,
    license: manifest.license,
    source: manifest.source,
    tokenizer: manifest.tokenizer,
    manifestUri,
  };
}
