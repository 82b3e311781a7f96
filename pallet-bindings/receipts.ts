// Update receipts: the leaf each accepted update has under a round's updatesRoot, the tree over them, and the check a
// worker makes of its receipt against the finalizeRound on chain (not against what the coordinator says the root is).
// Leaves and nodes are domain-separated SHA-256 (0x00 leaf, 0x01 node; an odd last node is promoted), as in datasets/.
import { createHash } from 'node:crypto';
import type { FinalizedRound } from './state.ts';
import type { Account, Hex32 } from './types.ts';

/** What an accepted update's leaf binds: its round, its worker, the samples it counted for and its payload. */
export interface UpdateLeafFields {
  proposal: number;
  round: number;
  account: Account;
  samples: number;
  payloadSha256: Uint8Array;
}

/** A leaf's path to the root: the siblings bottom-up (0x-hex), where the leaf sits, and the tree's width. */
export interface ReceiptProof {
  leafIndex: number;
  leafCount: number;
  siblings: string[];
}

const sha256 = (...parts: (Uint8Array | string)[]): Uint8Array => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};
const hex = (b: Uint8Array): Hex32 => `0x${Buffer.from(b).toString('hex')}`;
const isHex32 = (s: unknown): s is string => typeof s === 'string' && /^0x[0-9a-fA-F]{64}$/.test(s);
const leafNode = (data: Uint8Array) => sha256(Uint8Array.of(0x00), data);
const innerNode = (l: Uint8Array, r: Uint8Array) => sha256(Uint8Array.of(0x01), l, r);

/** The receipt hash of an accepted update: the leaf data under updatesRoot (docs/wire.md). */
export function updateLeafHash(fields: UpdateLeafFields): Uint8Array {
  return sha256(
    `fedtune-update-v1:${fields.proposal}:${fields.round}:${fields.account}:${fields.samples}:`,
    fields.payloadSha256,
  );
}

/** updatesRoot over the accepted updates in account order, and each one's inclusion proof. */
export function updatesTree(leaves: { account: Account; updateHash: Uint8Array }[]): {
  root: Hex32;
  proof(account: Account): ReceiptProof | null;
} {
  if (leaves.length === 0) throw new Error('updatesTree needs at least one leaf');
  const sorted = [...leaves].sort((a, b) => (a.account < b.account ? -1 : a.account > b.account ? 1 : 0));
  const levels = [sorted.map((l) => leafNode(l.updateHash))];
  while (levels.at(-1)!.length > 1) {
    const level = levels.at(-1)!;
    const up: Uint8Array[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) up.push(innerNode(level[i]!, level[i + 1]!));
    if (level.length % 2 === 1) up.push(level.at(-1)!);
    levels.push(up);
  }
  return {
    root: hex(levels.at(-1)![0]!),
    proof(account) {
      const leafIndex = sorted.findIndex((l) => l.account === account);
      if (leafIndex < 0) return null;
      const siblings: string[] = [];
      let index = leafIndex;
      for (const level of levels.slice(0, -1)) {
        if ((index ^ 1) < level.length) siblings.push(hex(level[index ^ 1]!));
        index >>= 1;
      }
      return { leafIndex, leafCount: sorted.length, siblings };
    },
  };
}

/** The root a leaf and its proof lead to, or null when the proof is malformed for its declared width. */
function rootOf(updateHash: Uint8Array, proof: ReceiptProof): Uint8Array | null {
  const { leafIndex, leafCount, siblings } = proof;
  if (!Number.isInteger(leafCount) || !Number.isInteger(leafIndex) || leafCount < 1) return null;
  if (leafIndex < 0 || leafIndex >= leafCount || !Array.isArray(siblings) || siblings.length > 64) return null;
  let hash = leafNode(updateHash);
  let index = leafIndex;
  let width = leafCount;
  let used = 0;
  while (width > 1) {
    if (!(index === width - 1 && width % 2 === 1)) {
      const s = siblings[used++];
      if (!isHex32(s)) return null;
      const sibling = new Uint8Array(Buffer.from(s.slice(2), 'hex'));
      hash = index % 2 === 0 ? innerNode(hash, sibling) : innerNode(sibling, hash);
    }
    index >>= 1;
    width = Math.ceil(width / 2);
  }
  return used === siblings.length ? hash : null;
}

export type ReceiptVerdict =
  | { ok: true }
  | { ok: false; code: 'E_RECEIPT_NOT_CONTRIBUTOR' | 'E_RECEIPT_LEAF' | 'E_RECEIPT_PROOF'; reason: string };

/**
 * Checks a worker's receipt against the round as finalized on chain: the worker is among its contributors, the leaf
 * recomputed from the worker's own payload hash and the samples the chain credits it with is the receipt it was
 * acknowledged with, and the proof leads from that leaf to the chain's updatesRoot.
 */
export function verifyReceipt(input: {
  finalized: Pick<FinalizedRound, 'round' | 'updatesRoot' | 'contributors'>;
  proposal: number;
  account: Account;
  payloadSha256: Uint8Array;
  /** The hash the coordinator acknowledged the update with. */
  updateHash: Uint8Array;
  proof: ReceiptProof;
}): ReceiptVerdict {
  const { finalized, proposal, account } = input;
  const contributor = finalized.contributors.find((c) => c.account === account);
  if (contributor === undefined)
    return { ok: false, code: 'E_RECEIPT_NOT_CONTRIBUTOR', reason: `${account} is not a contributor on chain` };
  const leaf = updateLeafHash({
    proposal,
    round: finalized.round,
    account,
    samples: contributor.samples,
    payloadSha256: input.payloadSha256,
  });
  if (!Buffer.from(leaf).equals(Buffer.from(input.updateHash))) {
    return {
      ok: false,
      code: 'E_RECEIPT_LEAF',
      reason: `the acknowledged hash is not this worker's update credited with ${contributor.samples} samples`,
    };
  }
  const root = rootOf(leaf, input.proof);
  if (root === null || hex(root) !== finalized.updatesRoot.toLowerCase())
    return { ok: false, code: 'E_RECEIPT_PROOF', reason: `the proof does not lead to ${finalized.updatesRoot}` };
  return { ok: true };
}
