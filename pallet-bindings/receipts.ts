// Receipts: the leaf an accepted update has under a round's on-chain updatesRoot, the tree the coordinator builds over
// them, and the check a worker (or anyone) runs on its inclusion proof. Both sides import this one module.
import { createHash } from 'node:crypto';
import {
  leafHash,
  merkleLevels,
  merkleProof,
  toHex,
  verifyProof,
  type MerkleProof,
} from '../merkle/index.ts';
import type { Hex32 } from './types.ts';

/** What a leaf of updatesRoot commits: who contributed which payload to which round, for how many samples. */
export interface UpdateLeaf {
  proposal: number;
  round: number;
  account: string;
  samples: number;
  payloadSha256: Uint8Array;
}

/** The update hash under updatesRoot (docs/wire.md): SHA-256 of the leaf's fields, domain-separated. */
export function updateLeafHash(leaf: UpdateLeaf): Uint8Array {
  const h = createHash('sha256');
  h.update(`fedtune-update-v1:${leaf.proposal}:${leaf.round}:${leaf.account}:${leaf.samples}:`);
  h.update(leaf.payloadSha256);
  return new Uint8Array(h.digest());
}

/** updatesRoot over the accepted updates in account order, and each one's inclusion proof. */
export function updatesTree(leaves: readonly { account: string; updateHash: Uint8Array }[]): {
  root: Hex32;
  /** Accounts in leaf order. */
  order: string[];
  proof(account: string): MerkleProof | null;
} {
  const sorted = [...leaves].sort((a, b) => (a.account < b.account ? -1 : a.account > b.account ? 1 : 0));
  const levels = merkleLevels(sorted.map((l) => leafHash(l.updateHash)));
  return {
    root: toHex(levels[levels.length - 1]![0]!),
    order: sorted.map((l) => l.account),
    proof: (account) => {
      const i = sorted.findIndex((l) => l.account === account);
      return i < 0 ? null : merkleProof(levels, i);
    },
  };
}

export type ReceiptCheck =
  { ok: true } | { ok: false; code: 'E_RECEIPT_LEAF' | 'E_RECEIPT_PROOF'; message: string };

/**
 * Checks a receipt: the leaf is recomputed from the holder's own fields (never taken from the sender), and its proof
 * must lead to `updatesRoot`, which the caller reads from the chain's finalizeRound, not from the coordinator's frame.
 */
export function verifyReceipt(params: {
  leaf: UpdateLeaf;
  /** The update hash the coordinator acknowledged, when the holder kept it: it must equal the recomputed one. */
  acknowledged?: Uint8Array;
  proof: MerkleProof;
  updatesRoot: Hex32;
}): ReceiptCheck {
  const hash = updateLeafHash(params.leaf);
  if (params.acknowledged && toHex(params.acknowledged) !== toHex(hash)) {
    return {
      ok: false,
      code: 'E_RECEIPT_LEAF',
      message: `the acknowledged update hash ${toHex(params.acknowledged)} is not the hash of this update's fields (${toHex(hash)})`,
    };
  }
  if (!verifyProof(params.updatesRoot, leafHash(hash), params.proof)) {
    return {
      ok: false,
      code: 'E_RECEIPT_PROOF',
      message: `the inclusion proof does not lead to updatesRoot ${params.updatesRoot}`,
    };
  }
  return { ok: true };
}

/** What a cohort's leaf under a hierarchical round's updatesRoot commits (docs/rounds.md, "Hierarchical rounds"). */
export interface CohortLeaf {
  proposal: number;
  round: number;
  /** The sub-coordinator that signed the cohort update. */
  account: string;
  /** The cohort's samples: the sum of its workers'. */
  samples: number;
  payloadSha256: Uint8Array;
  /** The cohort's own updatesRoot, over its workers' leaves. */
  cohortRoot: Uint8Array;
}

/** A cohort's leaf hash: its payload and its root, domain-separated from a worker's leaf. */
export function cohortLeafHash(leaf: CohortLeaf): Uint8Array {
  const h = createHash('sha256');
  h.update(`fedtune-cohort-v1:${leaf.proposal}:${leaf.round}:${leaf.account}:${leaf.samples}:`);
  h.update(leaf.payloadSha256);
  h.update(leaf.cohortRoot);
  return new Uint8Array(h.digest());
}

/**
 * A receipt through a cohort: the worker's leaf (recomputed) to the cohort's root, then the cohort's leaf (recomputed
 * from the cohort's fields, that root among them) to `updatesRoot`, which the caller reads from the chain.
 */
export function verifyCohortReceipt(params: {
  leaf: UpdateLeaf;
  acknowledged?: Uint8Array;
  proof: MerkleProof;
  cohort: Omit<CohortLeaf, 'proposal' | 'round'>;
  cohortProof: MerkleProof;
  updatesRoot: Hex32;
}): ReceiptCheck {
  const inner = verifyReceipt({
    leaf: params.leaf,
    acknowledged: params.acknowledged,
    proof: params.proof,
    updatesRoot: toHex(params.cohort.cohortRoot) as Hex32,
  });
  if (!inner.ok) return inner;
  const cohortHash = cohortLeafHash({
    ...params.cohort,
    proposal: params.leaf.proposal,
    round: params.leaf.round,
  });
  if (!verifyProof(params.updatesRoot, leafHash(cohortHash), params.cohortProof))
    return {
      ok: false,
      code: 'E_RECEIPT_PROOF',
      message: `the cohort of ${params.cohort.account} does not lead to updatesRoot ${params.updatesRoot}`,
    };
  return { ok: true };
}
