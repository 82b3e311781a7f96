// The verifier's vocabulary: what verifyRound is given, what it reports, and its two errors (a finding about the
// round, with its culprit; a round that cannot be verified at all).
import type { Logger } from 'pino';
import type { FitConfig } from '../aggregation/index.ts';
import type { Dataset, DatasetManifest } from '../datasets/index.ts';
import type { ModelConfig } from '../model/index.ts';
import type { NetworkState } from '../pallet-bindings/index.ts';
import { CodedError } from '../errors/index.ts';
import type { UpdateEncoding } from './derive.ts';
import type { PublishedUpdateRecord } from './publication.ts';

export type VerifyCode =
  | 'E_UPDATE_UNAVAILABLE'
  | 'E_UPDATE_HASH'
  | 'E_UPDATE_SIGNATURE'
  | 'E_SHARDS_MISMATCH'
  | 'E_AGGREGATE_MISMATCH'
  | 'E_EVAL_MISMATCH'
  | 'E_REWARD_MISMATCH'
  | 'E_WORK_MISMATCH'
  | 'E_HIERARCHY_UNCHECKED';

/** A failed check: its code, and the account at fault (a worker, or the round's coordinator). */
export class VerifyFailure extends CodedError {
  declare readonly code: VerifyCode;
  constructor(
    code: VerifyCode,
    message: string,
    readonly culprit: string | null,
  ) {
    super(code, message, { details: { culprit } });
  }
}

/** Why a round cannot be verified at all (not a finding about the round): unknown round, unreachable dataset. */
export class VerifyError extends CodedError {}

export interface VerifyStep {
  step: string;
  ok: boolean;
  ms: number;
  detail: string;
}

export interface WorkCheck {
  account: string;
  ok: boolean;
  /** Relative L2 distance between the published and re-executed update (0: the same bytes). */
  distance: number;
  threshold: number;
  ms: number;
}

export interface VerifyReport {
  ok: boolean;
  proposal: number;
  round: number;
  checkpoint: string;
  code?: VerifyCode;
  culprit?: string | null;
  message?: string;
  updates: number;
  evalLoss?: { committed: number; measured: number; tolerance: number };
  recomputed: WorkCheck[];
  steps: VerifyStep[];
  seconds: number;
}

/** What a re-execution needs: the task rebuilt from public values, the base checkpoint and the worker's records. */
export interface ReexecuteInput {
  proposal: number;
  round: number;
  update: PublishedUpdateRecord;
  payload: Uint8Array;
  baseBytes: Uint8Array;
  config: ModelConfig;
  /** The local training every task of the proposal carried (the seed comes with the task: taskFrame). */
  fit: FitConfig;
  encoding: UpdateEncoding;
  dataset: Dataset;
  manifest: DatasetManifest;
  datasetRoot: string;
  /** The worker's earlier accepted updates of this proposal (for codecs whose state carries across rounds). */
  earlier: { round: number; update: PublishedUpdateRecord; baseBytes: Uint8Array }[];
}

export type Reexecute = (
  input: ReexecuteInput,
) => Promise<{ ok: boolean; distance: number; threshold: number; detail?: string }>;

export interface VerifyRoundParams {
  /** The network's protocol state, read from the chain by the caller. */
  net: NetworkState;
  network: string;
  proposal: number;
  round: number;
  /** Hash of a block by number (the randomness that picks contributions to re-execute). */
  blockHash(n: number): Promise<string>;
  /** Base URLs beside the one on chain that serve /rounds, /blobs and /checkpoints. */
  sources?: string[];
  /** Contributions to re-execute (0: none). */
  recompute?: number;
  reexecute?: Reexecute;
  /** Kernels that aggregate: any gives the same bytes. */
  backend?: 'auto' | 'wasm' | 'js';
  /** A local copy of a dataset that is not built in. */
  data?: string;
  cacheDir: string;
  logger: Logger;
  onStep?: (step: VerifyStep) => void;
}
