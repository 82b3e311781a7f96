// merkle/: the commitment scheme behind every on-chain root (dataset roots, updatesRoot, shard roots): a binary SHA-256 Merkle tree with domain-separated leaves (0x00) and nodes (0x01); an odd last node is promoted unchanged.
import { createHash } from 'node:crypto';
import { CodedError } from '../errors/index.ts';
/** A 32-byte hash written as 0x + 64 lowercase hex characters, the form committed on chain. */
export type Hex32 = `0x${string}`;

/** A malformed tree, proof index or hash, with a stable code. */
export class MerkleError extends CodedError {}

export const LEAF_PREFIX = 0x00;
export const NODE_PREFIX = 0x01;

/** The path from one leaf to the root: the siblings bottom-up, and where the leaf sits. */
export interface MerkleProof {
  leafIndex: number;
  leafCount: number;
  siblings: Hex32[];
}

export function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest().buffer, 0, 32);
}

/** SHA-256(0x00 || data). */
export function leafHash(data: Uint8Array): Uint8Array {
  return sha256(Uint8Array.of(LEAF_PREFIX), data);
}

/** SHA-256(0x01 || left || right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256(Uint8Array.of(NODE_PREFIX), left, right);
}

/** Every level of the tree, leaves first, root last. */
export function merkleLevels(leaves: Uint8Array[]): Uint8Array[][] {
  if (leaves.length === 0) throw new MerkleError('E_MERKLE_EMPTY', 'a Merkle tree needs at least one leaf');
  const levels = [leaves];
  let level = leaves;
  while (level.length > 1) {
    const up: Uint8Array[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) up.push(nodeHash(level[i]!, level[i + 1]!));
    // An odd last node moves up unchanged (not duplicated): no two leaf lists share a root.
    if (level.length % 2 === 1) up.push(level[level.length - 1]!);
    levels.push(up);
    level = up;
  }
  return levels;
}

export function merkleRoot(leaves: Uint8Array[]): Uint8Array {
  const levels = merkleLevels(leaves);
  return levels[levels.length - 1]![0]!;
}

export function merkleProof(levels: Uint8Array[][], leafIndex: number): MerkleProof {
  const leafCount = levels[0]!.length;
  if (!(Number.isInteger(leafIndex) && leafIndex >= 0 && leafIndex < leafCount)) {
    throw new MerkleError('E_MERKLE_BAD_INDEX', `leaf ${leafIndex} is not in 0..${leafCount - 1}`);
  }
  const siblings: Hex32[] = [];
  let index = leafIndex;
  for (let d = 0; d < levels.length - 1; d++) {
    const level = levels[d]!;
    const sibling = index ^ 1;
    if (sibling < level.length) siblings.push(toHex(level[sibling]!));
    index >>= 1;
  }
  return { leafIndex, leafCount, siblings };
}

/** The root that `leaf` and `proof` lead to, or undefined when the proof is malformed. */
export function rootFromProof(leaf: Uint8Array, proof: MerkleProof): Uint8Array | undefined {
  const { leafIndex, leafCount, siblings } = proof;
  if (!(Number.isInteger(leafCount) && leafCount >= 1 && Number.isInteger(leafIndex))) return undefined;
  if (leafIndex < 0 || leafIndex >= leafCount || !Array.isArray(siblings)) return undefined;
  let hash = leaf;
  let index = leafIndex;
  let width = leafCount;
  let used = 0;
  while (width > 1) {
    const promoted = index === width - 1 && width % 2 === 1;
    if (!promoted) {
      const s = siblings[used++];
      if (s === undefined || !isHash(s)) return undefined;
      const sibling = fromHex(s);
      hash = index % 2 === 0 ? nodeHash(hash, sibling) : nodeHash(sibling, hash);
    }
    index >>= 1;
    width = Math.ceil(width / 2);
  }
  return used === siblings.length ? hash : undefined;
}

export function verifyProof(root: Hex32 | string, leaf: Uint8Array, proof: MerkleProof): boolean {
  const computed = rootFromProof(leaf, proof);
  return computed !== undefined && isHash(root) && toHex(computed) === root.toLowerCase();
}

/** Any-case 0x + 64 hex digits: proofs and roots from peers are compared after lowercasing. */
const isHash = (value: unknown): value is Hex32 =>
  typeof value === 'string' && /^0x[0-9a-fA-F]{64}$/.test(value);

/** 0x + 64 lowercase hex digits: a hash as committed on chain. */
export function isHex32(value: unknown): value is Hex32 {
  return typeof value === 'string' && /^0x[0-9a-f]{64}$/.test(value);
}

export function toHex(bytes: Uint8Array): Hex32 {
  return `0x${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')}`;
}

export function fromHex(hex: Hex32 | string): Uint8Array {
  if (!isHash(hex)) {
    throw new MerkleError('E_DATASET_BAD_HASH', `"${hex}" is not a 32-byte hash (0x + 64 hex characters)`);
  }
  return new Uint8Array(Buffer.from(hex.slice(2), 'hex'));
}
