// The trainer's loop: take each task the coordinator sends, check the data against the chain's dataset root, fetch and
// verify the base checkpoint, train, encode (keeping top-k error feedback across rounds), sign and upload, keep the receipt.
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { writeFileAtomic, type DownloadProgress } from '../checkpoints/index.ts';
import { datasetForManifest, fetchManifest, type Dataset, type DatasetManifest } from '../datasets/index.ts';
import type { StepInfo } from '../model/index.ts';
import { MAX_MESSAGE_CHARS, type Ack, type RoundResult, type Task } from '../proto/index.ts';
import {
  fromHex,
  toHex,
  verifyCohortReceipt,
  verifyReceipt,
  type FinalizedRound,
  type Hex32,
} from '../pallet-bindings/index.ts';
import { connectWorker, type Signer, type WorkerConnection } from './connection.ts';
import { ResidualBook, isTopK, updatePayload } from './payload.ts';
import { fetchBaseCheckpoint, parseTask, trainTask, verifiedShardRecords } from './task.ts';

export type WorkerEvent =
  | { type: 'task'; taskId: string; proposal: number; round: number; shards: number[] }
  | { type: 'download'; taskId: string; received: number; total: number }
  | { type: 'step'; taskId: string; step: number; steps: number; loss: number }
  | { type: 'upload'; taskId: string; sent: number; total: number }
  | {
      type: 'ack';
      taskId: string;
      proposal: number;
      round: number;
      updateHash: string;
      bytes: number;
      denseBytes: number;
      trainLoss: number;
    }
  | { type: 'taskFailed'; taskId: string; code: string; message: string }
  | {
      type: 'result';
      proposal: number;
      round: number;
      checkpointId: string;
      blockHash: string;
      verified: boolean;
    };

/** What a trainer keeps per round: the receipt, and once the round is committed, the proof that it counted. */
export interface Receipt {
  proposal: number;
  round: number;
  taskId: string;
  coordinator: string;
  /** The fields of the update's leaf under updatesRoot, so the leaf is recomputed here, never taken from the coordinator. */
  account: string;
  payloadSha256: string;
  updateHash: string;
  samples: number;
  shards: number[];
  trainLoss: number;
  result?: {
    checkpointId: string;
    blockHash: string;
    updatesRoot: string;
    leafIndex: number;
    leafCount: number;
    proof: string[];
    verified: boolean;
    /** 'chain': checked against the finalizeRound on chain; 'coordinator': only against the root the frame carried. */
    checkedAgainst: 'chain' | 'coordinator';
    /** Why the check failed (a code and what was wrong), when it did. */
    failure?: string;
  };
}

/** `<proposal>-<round>-<task id>.json`; the task id is the coordinator's, so anything but [A-Za-z0-9._-] becomes _. */
export function receiptFileName(r: Pick<Receipt, 'proposal' | 'round' | 'taskId'>): string {
  return `${r.proposal}-${r.round}-${r.taskId.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 100)}.json`;
}

/** Where a worker reads a round as finalized on chain (a pallet-bindings state it keeps in sync). */
export interface ReceiptChain {
  /** The round as the reducer's state shows it finalized, or null while it is not (yet). */
  finalizedRound(proposal: number, round: number): Promise<FinalizedRound | null>;
}

export interface RunWorkerOptions {
  /** The coordinator's WebSocket URL. */
  url: string;
  signer: Signer;
  /** Base checkpoints and receipts are kept here. */
  cacheDir: string;
  /** The trainer's copy of a dataset that is not built in (folder of .txt files or .jsonl). */
  data?: string;
  logger: Logger;
  onEvent?: (event: WorkerEvent) => void;
  reconnect?: { minMs?: number; maxMs?: number };
  chunkBytes?: number;
  /** Stop after this many tasks answered (uploaded or failed); resolves `done`. */
  maxTasks?: number;
  /** The network and coordinator(s) the chain names: a challenge from anyone else is not signed. */
  expect?: { network?: string; coordinators?: string[] };
  /** Receipts are checked against the chain when given (else only against the coordinator's own RoundResult). */
  chain?: ReceiptChain;
  /** Attempts to find the finalized round on chain after a RoundResult, a second apart (default 10). */
  chainAttempts?: number;
}

export interface RunningWorker {
  connection: WorkerConnection;
  /** Resolves once authenticated; rejects with the coordinator's reason (not registered, wrong version, …). */
  ready: Promise<void>;
  /** Resolves after maxTasks tasks, or when closed. */
  done: Promise<void>;
  receipts(): Receipt[];
  close(): Promise<void>;
}

/**
 * A receipt's check once the round is committed: against the chain's finalizeRound when there is a chain (the worker is
 * a contributor, its leaf recomputed from its own payload hash is the acknowledged one, the proof leads to the chain's
 * updatesRoot), else only against the root the coordinator's RoundResult carries.
 */
/** The check without a chain: the leaf recomputed from the receipt's own fields, the proof to the frame's root. */
export function checkAgainstFrame(
  receipt: Receipt,
  result: RoundResult,
): { verified: boolean; failure?: string } {
  return checkLeaf(receipt, result, receipt.samples, toHex(result.updatesRoot));
}

/**
 * The leaf recomputed from the receipt's own fields (with the samples given) and its proof to `updatesRoot`; through the
 * cohort's root first when a sub-coordinator sent the result (docs/rounds.md, "Hierarchical rounds").
 */
function checkLeaf(
  receipt: Receipt,
  result: RoundResult,
  samples: number,
  updatesRoot: string,
): { verified: boolean; failure?: string } {
  const leaf = {
    proposal: receipt.proposal,
    round: receipt.round,
    account: receipt.account,
    samples,
    payloadSha256: fromHex(receipt.payloadSha256),
  };
  const proof = {
    leafIndex: result.leafIndex,
    leafCount: result.leafCount,
    siblings: result.proof.map((p) => toHex(p)),
  };
  const acknowledged = fromHex(receipt.updateHash);
  const c = result.cohort;
  const verdict = c
    ? verifyCohortReceipt({
        leaf,
        acknowledged,
        proof,
        cohort: {
          account: c.account,
          samples: c.samples,
          payloadSha256: c.payloadSha256,
          cohortRoot: c.root,
        },
        cohortProof: {
          leafIndex: c.leafIndex,
          leafCount: c.leafCount,
          siblings: c.proof.map((p) => toHex(p)),
        },
        updatesRoot: updatesRoot as Hex32,
      })
    : verifyReceipt({ leaf, acknowledged, proof, updatesRoot: updatesRoot as Hex32 });
  return verdict.ok
    ? { verified: true }
    : { verified: false, failure: `${verdict.code}: ${verdict.message}` };
}

export async function checkRoundResult(args: {
  receipt: Receipt;
  result: RoundResult;
  chain?: ReceiptChain;
  attempts?: number;
  retryMs?: number;
}): Promise<{ verified: boolean; failure?: string }> {
  const { receipt, result, chain } = args;
  if (!chain) return checkAgainstFrame(receipt, result);
  let finalized: FinalizedRound | null = null;
  const attempts = args.attempts ?? 10;
  for (let i = 0; i < attempts && finalized === null; i++) {
    if (i > 0) await sleep(args.retryMs ?? 1000);
    finalized = await chain.finalizedRound(result.proposal, result.round).catch(() => null);
  }
  if (finalized === null)
    return {
      verified: false,
      failure: `E_RECEIPT_NOT_ON_CHAIN: round ${result.round} is not finalized on chain`,
    };
  // The chain says which samples this worker was credited with; the leaf must hold exactly those.
  const mine = finalized.contributors.find((c) => c.account === receipt.account);
  if (mine === undefined) {
    return {
      verified: false,
      failure: `E_RECEIPT_NOT_CONTRIBUTOR: ${receipt.account} is not among the round's contributors on chain`,
    };
  }
  return checkLeaf(receipt, result, mine.samples, finalized.updatesRoot);
}

export function runWorker(options: RunWorkerOptions): RunningWorker {
  const { logger, cacheDir } = options;
  const emit = (event: WorkerEvent) => {
    try {
      options.onEvent?.(event);
    } catch (error) {
      logger.warn({ err: error }, 'event handler failed');
    }
  };
  const manifests = new Map<string, DatasetManifest>();
  const datasets = new Map<string, Dataset>();
  // Top-k error feedback: per proposal, the residual left by the worker's acknowledged upload of each recent round;
  // one folder per account, since trainers may share a --cache.
  const residuals = new ResidualBook(join(cacheDir, 'residuals', options.signer.address), logger);
  const seen = new Set<string>();
  const receipts = new Map<string, Receipt>();
  let queue: Promise<void> = Promise.resolve();
  let answered = 0;
  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));
  const receiptsDir = join(cacheDir, 'receipts');

  // One file per task, named by it: a receipt is a trainer's proof of contribution, so no other task's (a retry of the
  // round, another trainer pointed at the same --cache) may replace it. Written whole or not at all.
  const saveReceipt = async (r: Receipt) => {
    await mkdir(receiptsDir, { recursive: true });
    await writeFileAtomic(
      receiptsDir,
      join(receiptsDir, receiptFileName(r)),
      new TextEncoder().encode(`${JSON.stringify(r, null, 2)}\n`),
    );
  };

  async function manifestFor(task: Task): Promise<DatasetManifest> {
    const root = task.datasetRoot;
    let manifest = manifests.get(root);
    if (!manifest) {
      manifest = await fetchManifest(`${task.base.url}/datasets/${root}/manifest`, root);
      manifests.set(root, manifest);
    }
    return manifest;
  }

  async function handle(task: Task): Promise<void> {
    emit({
      type: 'task',
      taskId: task.taskId,
      proposal: task.proposal,
      round: task.round,
      shards: task.shards,
    });
    logger.info(
      { taskId: task.taskId, proposal: task.proposal, round: task.round, shards: task.shards },
      'task',
    );
    const parsed = parseTask(task);
    const manifest = await manifestFor(task);
    let dataset = datasets.get(task.datasetRoot);
    if (!dataset) {
      dataset = datasetForManifest(manifest, options.data);
      datasets.set(task.datasetRoot, dataset);
    }
    const records = verifiedShardRecords(dataset, manifest, task.datasetRoot, task.shards);
    const base = await fetchBaseCheckpoint({
      task,
      cacheDir,
      logger,
      onProgress: (p: DownloadProgress) =>
        emit({ type: 'download', taskId: task.taskId, received: p.bytesDone, total: p.bytesTotal }),
    });
    const result = await trainTask({
      parsed,
      baseCheckpoint: base,
      records,
      labels: manifest.labels,
      logger,
      onStep: (s: StepInfo) =>
        emit({ type: 'step', taskId: task.taskId, step: s.step + 1, steps: s.steps, loss: s.loss }),
    });
    // The residual rule (docs/model.md, "Reproducible training"): a round-r task starts from the residual its
    // acknowledged round r-1 upload left, else from zero, so a verifier can rebuild it from published work alone.
    const topk = isTopK(parsed.codec.codec);
    const priorState = topk ? await residuals.before(task.proposal, task.round) : undefined;
    const { payload, state, denseBytes } = updatePayload({
      parsed,
      update: result.update,
      updateKind: result.updateKind,
      baseCheckpoint: base,
      priorState,
    });
    const ack: Ack = await connection.upload({
      taskId: task.taskId,
      proposal: task.proposal,
      round: task.round,
      base: task.base.id,
      codec: parsed.codec.codec,
      payload,
      samples: result.samples,
      shards: task.shards,
      trainLoss: result.trainLoss,
      deadlineMs: task.deadlineMs > 0 ? task.deadlineMs + 60_000 : undefined,
      onProgress: (sent, total) => emit({ type: 'upload', taskId: task.taskId, sent, total }),
    });
    const receipt: Receipt = {
      proposal: task.proposal,
      round: task.round,
      taskId: task.taskId,
      coordinator: options.url,
      account: options.signer.address,
      payloadSha256: toHex(new Uint8Array(createHash('sha256').update(payload).digest())),
      updateHash: toHex(ack.updateHash),
      samples: result.samples,
      shards: task.shards,
      trainLoss: result.trainLoss,
    };
    receipts.set(`${task.proposal}/${task.round}`, receipt);
    await saveReceipt(receipt);
    if (state) await residuals.keep(task.proposal, task.round, state);
    emit({
      type: 'ack',
      taskId: task.taskId,
      proposal: task.proposal,
      round: task.round,
      updateHash: receipt.updateHash,
      bytes: payload.length,
      denseBytes,
      trainLoss: result.trainLoss,
    });
    logger.info(
      { taskId: task.taskId, bytes: payload.length, denseBytes, trainLoss: result.trainLoss },
      'update acknowledged',
    );
  }

  const onTask = (task: Task) => {
    if (seen.has(task.taskId)) return; // sent again after a reconnect: already taken
    seen.add(task.taskId);
    queue = queue.then(async () => {
      try {
        await handle(task);
      } catch (error) {
        const code = (error as { code?: string }).code ?? 'E_TASK_FAILED';
        const message = (error as Error).message;
        logger.error({ taskId: task.taskId, code }, `task failed: ${message}`);
        emit({ type: 'taskFailed', taskId: task.taskId, code, message });
        // The wire bounds a message's length; a longer one would get the connection closed.
        const short =
          message.length <= MAX_MESSAGE_CHARS ? message : `${message.slice(0, MAX_MESSAGE_CHARS - 1)}…`;
        connection.send({ kind: 'taskFailed', taskFailed: { taskId: task.taskId, code, message: short } });
      }
      answered += 1;
      if (options.maxTasks !== undefined && answered >= options.maxTasks) resolveDone();
    });
  };

  const recordResult = (
    receipt: Receipt,
    result: RoundResult,
    verdict: { verified: boolean; failure?: string },
  ) => {
    const { verified, failure } = verdict;
    receipt.result = {
      checkpointId: result.checkpointId,
      blockHash: result.blockHash,
      updatesRoot: toHex(result.updatesRoot),
      leafIndex: result.leafIndex,
      leafCount: result.leafCount,
      proof: result.proof.map((p) => toHex(p)),
      verified,
      checkedAgainst: options.chain ? 'chain' : 'coordinator',
      ...(failure !== undefined ? { failure } : {}),
    };
    void saveReceipt(receipt).catch((error: unknown) =>
      logger.warn({ err: error }, 'saving the receipt failed'),
    );
    emit({
      type: 'result',
      proposal: result.proposal,
      round: result.round,
      checkpointId: result.checkpointId,
      blockHash: result.blockHash,
      verified,
    });
    if (verified)
      logger.info({ proposal: result.proposal, round: result.round }, 'round committed; update included');
    else
      logger.warn(
        { proposal: result.proposal, round: result.round, failure },
        'the round result does not prove this update',
      );
  };

  const onRoundResult = (result: RoundResult) => {
    const receipt = receipts.get(`${result.proposal}/${result.round}`);
    if (!receipt) return;
    // Without a chain the check is against the frame alone and answers at once; with one it waits for the chain.
    if (!options.chain) recordResult(receipt, result, checkAgainstFrame(receipt, result));
    else
      void checkRoundResult({ receipt, result, chain: options.chain, attempts: options.chainAttempts }).then(
        (verdict) => recordResult(receipt, result, verdict),
      );
  };

  // Tasks arrive only after authentication, by which time `connection` is set.
  const connection: WorkerConnection = connectWorker({
    url: options.url,
    signer: options.signer,
    logger,
    onTask,
    onRoundResult,
    reconnect: options.reconnect,
    chunkBytes: options.chunkBytes,
    expect: options.expect,
  });
  const ready = connection.ready.then(() => undefined);
  ready.catch(() => resolveDone());

  return {
    connection,
    ready,
    done,
    receipts: () => [...receipts.values()],
    async close() {
      await connection.close();
      resolveDone();
    },
  };
}
