// The round engine: follows the chain, opens the approved proposals it coordinates, runs their rounds over the worker
// server (tasks, validated updates journaled before they are acknowledged), aggregates, evaluates, stores the
// checkpoint and commits it with the rewards in one batch — resuming from its journal after a crash.
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import {
  createStrategy,
  decodeUpdate,
  CODECS,
  type CodecName,
  type NamedTensor as AggTensor,
  type Strategy,
} from '../aggregation/index.ts';
import {
  downloadCheckpoint,
  handleCheckpointRequest,
  httpSource,
  openStore,
  type CheckpointStore,
} from '../checkpoints/index.ts';
import { datasetForManifest, fetchManifest, type Dataset, type DatasetManifest } from '../datasets/index.ts';
import { fromHex, leafHash, merkleLevels, merkleProof, merkleRoot, toHex } from '../datasets/merkle.ts';
import {
  addLora,
  createModel,
  disposeModel,
  getWeights,
  modelFromSafetensors,
  modelToSafetensors,
  setWeights,
  trainableNames,
  validateConfig,
  type Model,
  type ModelConfig,
} from '../model/index.ts';
import {
  approvedRounds,
  finalizedHead,
  initialState,
  isCoordinator,
  isWorker,
  openRounds,
  submit,
  syncState,
  type ChainClient,
  type FinalizeRound,
  type Hex32,
  type KeyringPair,
  type ProtocolState,
  type RoundProposal,
  type Transfer,
} from '../pallet-bindings/index.ts';
import type { Task } from '../proto/index.ts';
import { evaluateHeldOut } from '../worker/task.ts';
import { openJournal, type Journal } from './journal.ts';
import { Metrics } from './metrics.ts';
import {
  startCoordinatorServer,
  type CoordinatorServer,
  type ServerLimits,
  type UploadedUpdate,
} from './server.ts';

export class CoordinatorError extends Error {
  readonly code: string;
  readonly exitCode: number;
  constructor(code: string, message: string, options: { exitCode?: number; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'CoordinatorError';
    this.code = code;
    this.exitCode = options.exitCode ?? 1;
  }
}

/** The chain took the extrinsic but the protocol's rules refused the call: retrying cannot help. */
class ProtocolRejection extends CoordinatorError {}

// ---- the journal's records ------------------------------------------------------------------------

interface TaskRecord {
  account: string;
  taskId: string;
  shards: number[];
}

/** A round attempt began (or was retried with a new deadline): the tasks handed out so far. */
interface RoundRecord {
  t: 'round';
  proposal: number;
  round: number;
  attempt: number;
  base: string;
  deadlineMs: number;
  slots: number;
  tasks: TaskRecord[];
}

/** An update that passed every check; written (and fsync'd) before the worker is acknowledged. */
interface UpdateRecord {
  t: 'update';
  proposal: number;
  round: number;
  account: string;
  taskId: string;
  samples: number;
  shards: number[];
  trainLoss: number;
  payloadSha256: Uint8Array;
  updateHash: Uint8Array;
  payload: Uint8Array;
}

/** The round was aggregated and stored; this exact call is what gets committed (again, after a crash). */
interface ClosedRecord {
  t: 'closed';
  proposal: number;
  round: number;
  call: Omit<FinalizeRound, 'proposal' | 'round'>;
  transfers: { dest: string; value: string }[];
  leaves: { account: string; updateHash: Uint8Array }[];
}

interface CommittedRecord {
  t: 'committed';
  proposal: number;
  round: number;
  blockHash: string;
  blockNumber: number;
}

type JournalRecord = RoundRecord | UpdateRecord | ClosedRecord | CommittedRecord;

// ---- events, for the CLI's progress lines, the demo and tests ------------------------------------------

export type CoordinatorEvent =
  | { type: 'opened'; proposal: number; blockNumber: number }
  | {
      type: 'roundStarted';
      proposal: number;
      round: number;
      attempt: number;
      base: string;
      deadlineMs: number;
      tasks: number;
      resumed: boolean;
    }
  | { type: 'taskSent'; proposal: number; round: number; account: string; shards: number[] }
  | {
      type: 'updateAccepted';
      proposal: number;
      round: number;
      account: string;
      samples: number;
      bytes: number;
    }
  | {
      type: 'updateRejected';
      proposal: number;
      round: number;
      account: string;
      code: string;
      message: string;
    }
  | { type: 'roundRetried'; proposal: number; round: number; attempt: number; accepted: number }
  | {
      type: 'roundClosed';
      proposal: number;
      round: number;
      accepted: number;
      checkpointId: string;
      evalLoss: number;
      baseEvalLoss: number | null;
      aggregationMs: number;
    }
  | {
      type: 'committed';
      proposal: number;
      round: number;
      checkpointId: string;
      blockHash: string;
      blockNumber: number;
      evalLoss: number;
      rewards: { account: string; amount: string }[];
    }
  | { type: 'failed'; proposal: number; reason: string };

export interface CoordinatorOptions {
  chain: ChainClient;
  signer: KeyringPair;
  network: Hex32;
  /** Journal, checkpoint store: everything needed to resume. */
  dataDir: string;
  host?: string;
  port?: number;
  /** The HTTP base URL workers and consumers reach this coordinator at (default: the listening address). */
  publicUrl?: string;
  /** Local data for datasets that are not built in: dataset root or name → folder or .jsonl path. */
  data?: Record<string, string>;
  /** First block to read the protocol state from. */
  from?: number;
  limits?: Partial<ServerLimits>;
  /** Extra tasks handed out beyond maxWorkers, as a fraction, to absorb dropouts (default 0.25). */
  overselect?: number;
  /** Retries (each a new deadline) of a round short of minWorkers before the proposal is failed (default 2). */
  maxRetries?: number;
  /** Held-out examples scored after each round (default 256, evenly spaced). */
  evalExamples?: number;
  logger: Logger;
  onEvent?: (event: CoordinatorEvent) => void;
}

export interface Coordinator {
  url: string;
  httpUrl: string;
  server: CoordinatorServer;
  store: CheckpointStore;
  metrics: Metrics;
  /** The protocol state as last followed. */
  state(): ProtocolState;
  /** Resolves when no proposal this coordinator runs is approved or open. */
  idle(): Promise<void>;
  /** Stops serving, lets the current step finish what it must, closes the journal. */
  close(): Promise<void>;
  /** Stops at once, as a crash would: nothing more is written (tests). */
  abort(): Promise<void>;
}

const NO_PAYLOAD = new Uint8Array(0);

interface Accepted {
  record: UpdateRecord;
}

interface LiveRound {
  proposal: number;
  round: number;
  attempt: number;
  base: { id: string; bytes: number };
  deadlineMs: number;
  slots: number;
  tasks: Map<string, TaskRecord>;
  accepted: Map<string, Accepted>;
  /** Workers whose task failed or whose update was rejected: they count as having answered. */
  answered: Set<string>;
  closing: boolean;
  wake: () => void;
}

interface ProposalContext {
  id: number;
  proposal: RoundProposal;
  config: ModelConfig;
  manifest: DatasetManifest;
  dataset: Dataset;
  spec: unknown;
  codec: { codec: CodecName } & Record<string, unknown>;
  /** The model the next round starts from, its checkpoint id, and the strategy that carries server state. */
  current: { id: string; model: Model; round: number } | null;
  strategy: Strategy | null;
  /** The most values an update may decode to: the size of what the strategy aggregates. */
  maxValues: number | null;
  baseEvalLoss: number | null;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function sha256(...parts: (Uint8Array | string)[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

/** The receipt hash of an accepted update: the leaf data under updatesRoot (docs/wire.md). */
export function updateReceiptHash(fields: {
  proposal: number;
  round: number;
  account: string;
  samples: number;
  payloadSha256: Uint8Array;
}): Uint8Array {
  return sha256(
    `fedtune-update-v1:${fields.proposal}:${fields.round}:${fields.account}:${fields.samples}:`,
    fields.payloadSha256,
  );
}

/** updatesRoot over the accepted updates in account order, and each one's inclusion proof. */
export function updatesTree(leaves: { account: string; updateHash: Uint8Array }[]) {
  const sorted = [...leaves].sort((a, b) => (a.account < b.account ? -1 : a.account > b.account ? 1 : 0));
  const levels = merkleLevels(sorted.map((l) => leafHash(l.updateHash)));
  return {
    root: toHex(levels[levels.length - 1]![0]!),
    proof: (account: string) => {
      const i = sorted.findIndex((l) => l.account === account);
      return i < 0 ? null : merkleProof(levels, i);
    },
  };
}

/** A seed for a proposal's initial weights and LoRA adapters: the same on every restart. */
function proposalSeed(network: string, proposal: number): number {
  return Buffer.from(sha256(`fedtune-init:${network}:${proposal}`)).readUInt32LE(0);
}

function parseEncoding(text: string): ({ codec: CodecName } & Record<string, unknown>) | string {
  let value: Record<string, unknown>;
  if (text.trim().startsWith('{')) {
    try {
      value = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return `update encoding ${JSON.stringify(text)} is not valid JSON`;
    }
  } else {
    const [codec, fraction] = text.split(':');
    value = { codec, ...(fraction !== undefined ? { fraction: Number(fraction) } : {}) };
  }
  if (!(CODECS as readonly string[]).includes(String(value.codec)))
    return `update encoding ${JSON.stringify(value.codec)} is not one of ${CODECS.join(', ')}`;
  return value as { codec: CodecName } & Record<string, unknown>;
}

export async function startCoordinator(options: CoordinatorOptions): Promise<Coordinator> {
  const { chain, signer, network, logger } = options;
  const me = signer.address;
  const overselect = options.overselect ?? 0.25;
  const maxRetries = options.maxRetries ?? 2;
  const evalExamples = options.evalExamples;
  const emit = (event: CoordinatorEvent) => {
    try {
      options.onEvent?.(event);
    } catch (error) {
      logger.warn({ err: error }, 'event handler failed');
    }
  };

  await mkdir(options.dataDir, { recursive: true });
  const store = await openStore(join(options.dataDir, 'store'));
  const journal: Journal<JournalRecord> = await openJournal(join(options.dataDir, 'journal.bin'));
  const key = (p: number, r: number) => `${p}/${r}`;
  const recovered = {
    rounds: new Map<string, RoundRecord>(),
    updates: new Map<string, UpdateRecord[]>(),
    closed: new Map<string, ClosedRecord>(),
    committed: new Set<string>(),
  };
  /** Indexes a record: what the journal holds is what a round is rebuilt from, after a restart or a failed step. */
  const index = (rec: JournalRecord) => {
    const k = key(rec.proposal, rec.round);
    if (rec.t === 'round') recovered.rounds.set(k, rec);
    else if (rec.t === 'update') recovered.updates.set(k, [...(recovered.updates.get(k) ?? []), rec]);
    else if (rec.t === 'closed') recovered.closed.set(k, rec);
    else {
      recovered.committed.add(k);
      // A committed round is never rebuilt: free its payloads.
      recovered.updates.delete(k);
      recovered.rounds.delete(k);
    }
  };
  journal.recovered.forEach(index);
  /** Appends a record (fsync'd) and indexes it. */
  const write = async (rec: JournalRecord) => {
    await journal.append(rec);
    index(rec);
  };
  if (journal.recovered.length > 0)
    logger.info(
      { records: journal.recovered.length, truncatedBytes: journal.truncatedBytes },
      'journal replayed',
    );

  let state = initialState({ only: network });
  let closed = false;
  let live: LiveRound | null = null;
  const contexts = new Map<number, ProposalContext>();
  const manifests = new Map<string, DatasetManifest>();
  const metrics = new Metrics();

  // ---- chain state ------------------------------------------------------------------------------
  let syncing: Promise<void> = Promise.resolve();
  const refresh = (): Promise<void> => {
    syncing = syncing.then(async () => {
      if (closed) return;
      try {
        state = await syncState(chain, { state, from: options.from });
      } catch (error) {
        logger.warn({ err: error }, 'reading the chain failed; retrying at the next block');
      }
    });
    return syncing;
  };
  const net = () => state.networks[network];
  const proposalOf = (id: number) => net()?.proposals[id] as RoundProposal | undefined;

  async function waitForHeight(height: number, timeoutMs = 120_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (state.height < height) {
      if (closed) throw new Error('coordinator closed');
      if (Date.now() > until) throw new Error(`the chain did not reach block ${height} in time`);
      await refresh();
      if (state.height < height) await sleep(200);
    }
  }

  /** Submits calls, waits for the reducer's verdict; a call the protocol rejected throws its code. */
  async function submitChecked(params: Parameters<typeof submit>[1]) {
    const inclusion = await submit(chain, params);
    await waitForHeight(inclusion.blockNumber);
    const broken = state.audit.find(
      (a) => a.block === inclusion.blockNumber && a.extrinsic === inclusion.extrinsicIndex,
    );
    if (broken) throw new ProtocolRejection(broken.code, `${broken.callType} was rejected: ${broken.reason}`);
    return inclusion;
  }

  // ---- the worker server ------------------------------------------------------------------------------
  async function routeHttp(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const path = (req.url ?? '/').split('?')[0]!;
    const m = /^\/datasets\/(0x[0-9a-f]{64})\/manifest$/.exec(path);
    if (m) {
      const manifest = manifests.get(m[1]!);
      if (!manifest) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'E_NOT_FOUND', message: `no dataset ${m[1]} here` } }));
      } else {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(manifest));
      }
      return true;
    }
    return handleCheckpointRequest(store, req, res);
  }

  const server = await startCoordinatorServer({
    host: options.host,
    port: options.port,
    coordinator: me,
    network,
    limits: options.limits,
    metrics,
    logger,
    http: routeHttp,
    hooks: {
      async admit(account) {
        const registered = () => net() !== undefined && isWorker(net()!, account);
        if (!registered()) await refresh();
        if (!registered()) {
          return {
            ok: false,
            code: 'E_NOT_REGISTERED',
            message: `${account} is not registered as a worker of network ${network}: run \`fedtune worker register\``,
          };
        }
        return { ok: true };
      },
      expectedUpload(account, taskId) {
        const round = live;
        const task = round?.tasks.get(account);
        if (!round || !task || task.taskId !== taskId) return null;
        const ctx = contexts.get(round.proposal)!;
        return { proposal: round.proposal, round: round.round, base: round.base.id, codec: ctx.codec.codec };
      },
      receiptFor(account, taskId, payloadSha256) {
        const got = live?.accepted.get(account)?.record;
        if (!got || got.taskId !== taskId) return null;
        return Buffer.from(got.payloadSha256).equals(Buffer.from(payloadSha256)) ? got.updateHash : null;
      },
      acceptUpdate: (update) => acceptUpdate(update),
      taskFailed(account, failure) {
        const round = live;
        if (!round || round.tasks.get(account)?.taskId !== failure.taskId) return;
        logger.warn({ account, code: failure.code }, `worker failed its task: ${failure.message}`);
        round.answered.add(account);
        round.wake();
      },
      connected(account) {
        const round = live;
        if (!round || round.closing) return;
        if (round.accepted.has(account)) return;
        const task = round.tasks.get(account);
        if (task) sendTask(round, task);
        else void assignLate(round, account);
      },
    },
  });
  const httpUrl = options.publicUrl ?? server.httpUrl;

  // ---- tasks and updates ------------------------------------------------------------------------------
  function taskFrame(round: LiveRound, task: TaskRecord): Task {
    const ctx = contexts.get(round.proposal)!;
    const h = ctx.proposal.round.hyperParams;
    const seed = Buffer.from(sha256(`${round.proposal}:${round.round}:${task.account}`)).readUInt32LE(0);
    return {
      taskId: task.taskId,
      proposal: round.proposal,
      round: round.round,
      base: { id: round.base.id, bytes: round.base.bytes, url: httpUrl },
      shards: task.shards,
      datasetRoot: ctx.proposal.round.dataset,
      modelJson: JSON.stringify(ctx.config),
      hyperparamsJson: JSON.stringify({
        localSteps: h.localSteps,
        batchSize: h.batchSize,
        lr: h.learningRate,
        optimizer: h.optimiser,
        proxMu: h.fedProxMu,
        clipNorm: 1,
        warmupSteps: 0,
        seed,
      }),
      codecJson: JSON.stringify(ctx.codec),
      deadlineMs: round.deadlineMs,
    };
  }

  function sendTask(round: LiveRound, task: TaskRecord) {
    if (server.send(task.account, { kind: 'task', task: taskFrame(round, task) })) {
      emit({
        type: 'taskSent',
        proposal: round.proposal,
        round: round.round,
        account: task.account,
        shards: task.shards,
      });
    }
  }

  function slotShards(slot: number, slots: number, round: number, shardCount: number): number[] {
    const out: number[] = [];
    for (let j = 0; j < shardCount; j++) if ((j + round) % slots === slot) out.push(j);
    return out;
  }

  /** Registered workers connected now, in the round's deterministic order. */
  function eligible(proposal: number, round: number): string[] {
    const n = net();
    return server
      .connectedAccounts()
      .filter((a) => n !== undefined && isWorker(n, a))
      .map((a) => ({ a, h: Buffer.from(sha256(`${network}:${proposal}:${round}:${a}`)).toString('hex') }))
      .sort((x, y) => (x.h < y.h ? -1 : 1))
      .map((x) => x.a);
  }

  function newTask(round: LiveRound, account: string): TaskRecord | null {
    const used = new Set([...round.tasks.values()].map(slotOf));
    const ctx = contexts.get(round.proposal)!;
    for (let slot = 0; slot < round.slots; slot++) {
      if (used.has(slot)) continue;
      return {
        account,
        taskId: `${round.proposal}-${round.round}-${round.attempt}-${slot}`,
        shards: slotShards(slot, round.slots, round.round, ctx.manifest.shards.length),
      };
    }
    return null;
  }
  /** Task ids are `proposal-round-attempt-slot`. */
  const slotOf = (t: TaskRecord) => Number(t.taskId.split('-')[3]);

  function taskCap(ctx: ProposalContext): number {
    const { maxWorkers } = ctx.proposal.round;
    return Math.max(1, Math.min(ctx.manifest.shards.length, Math.ceil(maxWorkers * (1 + overselect))));
  }

  async function assignLate(round: LiveRound, account: string) {
    const n = net();
    if (n === undefined || !isWorker(n, account)) return;
    const task = newTask(round, account);
    if (!task) return;
    round.tasks.set(account, task);
    await journalRound(round);
    sendTask(round, task);
  }

  function journalRound(round: LiveRound): Promise<void> {
    return write({
      t: 'round',
      proposal: round.proposal,
      round: round.round,
      attempt: round.attempt,
      base: round.base.id,
      deadlineMs: round.deadlineMs,
      slots: round.slots,
      tasks: [...round.tasks.values()],
    });
  }

  /** Decodes and folds an update into the strategy; the reason when it does not fit. */
  function fold(
    ctx: ProposalContext,
    account: string,
    samples: number,
    payload: Uint8Array,
  ): { ok: true } | { ok: false; code: string; message: string } {
    let tensors: AggTensor[];
    try {
      // Names and shapes are the strategy's to check (E_UPDATE_SHAPE); the decoder only bounds the size.
      tensors = decodeUpdate(payload, { codec: ctx.codec.codec, maxValues: ctx.maxValues! });
    } catch (error) {
      const e = error as { code?: string; message: string };
      return { ok: false, code: e.code ?? 'E_UPDATE_MALFORMED', message: e.message };
    }
    const verdict = ctx.strategy!.accept({ worker: account, samples, tensors });
    return verdict.ok ? { ok: true } : { ok: false, code: verdict.code, message: verdict.reason };
  }

  async function acceptUpdate(
    update: UploadedUpdate,
  ): Promise<{ ok: true; updateHash: Uint8Array } | { ok: false; code: string; message: string }> {
    const round = live;
    const reject = (code: string, message: string) => {
      // A rejected worker may still send a good update; one that gives up says so with TaskFailed.
      if (round) {
        emit({
          type: 'updateRejected',
          proposal: round.proposal,
          round: round.round,
          account: update.account,
          code,
          message,
        });
      }
      logger.info({ account: update.account, code }, `update rejected: ${message}`);
      return { ok: false as const, code, message };
    };
    const { begin, account } = update;
    if (!round || round.closing || begin.proposal !== round.proposal || begin.round !== round.round)
      return reject(
        'E_ROUND_CLOSED',
        `round ${begin.round} of proposal ${begin.proposal} is not taking updates`,
      );
    const task = round.tasks.get(account);
    if (!task || task.taskId !== begin.taskId)
      return reject('E_UNKNOWN_TASK', `no task ${begin.taskId} for ${account}`);
    if (round.accepted.has(account))
      return reject('E_DUPLICATE_UPDATE', `${account} already has an accepted update in this round`);
    const ctx = contexts.get(round.proposal)!;
    if (round.accepted.size >= ctx.proposal.round.maxWorkers)
      return reject(
        'E_ROUND_FULL',
        `round already holds maxWorkers = ${ctx.proposal.round.maxWorkers} updates`,
      );
    const sameShards =
      begin.shards.length === task.shards.length && begin.shards.every((s, i) => s === task.shards[i]);
    if (!sameShards)
      return reject(
        'E_WRONG_SHARDS',
        `update claims shards [${begin.shards}]; the task assigned [${task.shards}]`,
      );
    if (!Number.isFinite(begin.trainLoss)) return reject('E_UPDATE_NOT_FINITE', 'trainLoss is not finite');
    const folded = fold(ctx, account, begin.samples, update.payload);
    if (!folded.ok) return reject(folded.code, folded.message);
    const record: UpdateRecord = {
      t: 'update',
      proposal: round.proposal,
      round: round.round,
      account,
      taskId: begin.taskId,
      samples: begin.samples,
      shards: begin.shards,
      trainLoss: begin.trainLoss,
      payloadSha256: begin.payloadSha256,
      updateHash: updateReceiptHash({
        proposal: round.proposal,
        round: round.round,
        account,
        samples: begin.samples,
        payloadSha256: begin.payloadSha256,
      }),
      payload: update.payload,
    };
    // The payload is folded in and goes to the journal; memory keeps only what the receipts and the commit need.
    round.accepted.set(account, { record: { ...record, payload: NO_PAYLOAD } });
    try {
      await write(record);
    } catch (error) {
      // The update is in the aggregate but not on disk: stop, so that a restart replays only what is durable.
      logger.fatal({ err: error }, 'the journal cannot be written; stopping the coordinator');
      void shutdown(true);
      throw error;
    }
    emit({
      type: 'updateAccepted',
      proposal: round.proposal,
      round: round.round,
      account,
      samples: begin.samples,
      bytes: update.payload.length,
    });
    round.wake();
    return { ok: true, updateHash: record.updateHash };
  }

  // ---- proposals ------------------------------------------------------------------------------------
  async function manifestFor(root: Hex32): Promise<DatasetManifest> {
    const cached = manifests.get(root);
    if (cached) return cached;
    const record = net()?.datasets[root];
    if (!record) throw new CoordinatorError('E_UNKNOWN_DATASET', `dataset ${root} is not registered`);
    const manifest = await fetchManifest(record.manifestUri, root);
    manifests.set(root, manifest);
    return manifest;
  }

  /** Everything a proposal's rounds need that does not change between rounds; throws a reason to fail it. */
  async function prepare(p: RoundProposal): Promise<ProposalContext> {
    const cached = contexts.get(p.id);
    if (cached) {
      cached.proposal = p;
      return cached;
    }
    if (!('config' in p.round.model)) {
      throw new CoordinatorError(
        'E_MODEL_UNKNOWN',
        'the proposal names its model by hash only; this coordinator needs the config inline',
      );
    }
    let config: ModelConfig;
    try {
      config = validateConfig(JSON.parse(p.round.model.config) as ModelConfig);
    } catch (error) {
      throw new CoordinatorError(
        'E_MODEL_CONFIG',
        `the model config is invalid: ${(error as Error).message}`,
      );
    }
    const manifest = await manifestFor(p.round.dataset);
    const dataset = datasetForManifest(
      manifest,
      options.data?.[p.round.dataset] ?? options.data?.[manifest.name],
    );
    const h = p.round.hyperParams;
    let spec: unknown;
    try {
      spec = { name: h.aggregator, options: JSON.parse(h.aggregatorOptions || '{}') as unknown };
    } catch {
      throw new CoordinatorError(
        'E_STRATEGY_SPEC',
        `aggregator options are not JSON: ${h.aggregatorOptions}`,
      );
    }
    const codec = parseEncoding(h.updateEncoding);
    if (typeof codec === 'string') throw new CoordinatorError('E_BAD_ENCODING', codec);
    const ctx: ProposalContext = {
      id: p.id,
      proposal: p,
      config,
      manifest,
      dataset,
      spec,
      codec,
      current: null,
      strategy: null,
      maxValues: null,
      baseEvalLoss: null,
    };
    contexts.set(p.id, ctx);
    return ctx;
  }

  async function checkpointBytes(id: string): Promise<Uint8Array> {
    if (await store.has(id)) return store.readCheckpoint(id);
    const record = net()?.checkpoints[id as Hex32];
    if (!record) throw new CoordinatorError('E_UNKNOWN_CHECKPOINT', `checkpoint ${id} is not on chain`);
    const dir = join(options.dataDir, 'downloads', id.slice(2));
    const { manifest, path } = await downloadCheckpoint({
      id,
      sources: [httpSource(record.uri)],
      outDir: dir,
      logger,
    });
    const bytes = new Uint8Array(await readFile(path));
    const { model, parent, proposal, round, chunkSize } = manifest;
    const put = await store.put(bytes, { model, parent, proposal, round, chunkSize });
    if (put.id !== id) throw new CoordinatorError('E_CHECKPOINT_MISMATCH', `re-stored ${id} as ${put.id}`);
    return bytes;
  }

  /** Drops a proposal's model and strategy: the next round rebuilds them from the store and the journal. */
  function resetContext(ctx: ProposalContext) {
    if (ctx.current) disposeModel(ctx.current.model);
    ctx.current = null;
    ctx.strategy?.dispose();
    ctx.strategy = null;
    ctx.maxValues = null;
  }

  /** The model round r starts from, stored so that workers can fetch it by id. */
  async function baseModel(ctx: ProposalContext, r: number): Promise<{ id: string; model: Model }> {
    if (ctx.current && ctx.current.round === r) return ctx.current;
    const p = ctx.proposal;
    const seed = proposalSeed(network, p.id);
    // A round-0 base that is not on chain itself (fresh weights, or a parent with new adapters) is stored for workers.
    const storeBase = async (m: Model, parent: string | null) =>
      (
        await store.put(modelToSafetensors(m), {
          model: ctx.config as never,
          parent,
          proposal: p.id,
          round: null,
        })
      ).id;
    let model: Model;
    let id: string;
    if (r > 0) {
      id = p.finalized[r - 1]!.checkpoint.id;
      model = modelFromSafetensors(await checkpointBytes(id));
    } else if (p.round.kind === 'Pretrain') {
      model = createModel(ctx.config, { seed });
      id = await storeBase(model, null);
    } else {
      const parentId = p.round.baseCheckpoint!;
      const parent = modelFromSafetensors(await checkpointBytes(parentId));
      const { lora: _l, ...parentArch } = parent.config;
      const { lora, ...wantArch } = ctx.config;
      if (JSON.stringify(sortKeys(parentArch)) !== JSON.stringify(sortKeys(wantArch))) {
        disposeModel(parent);
        throw new CoordinatorError(
          'E_MODEL_MISMATCH',
          `the proposal's model config does not match base checkpoint ${parentId}'s architecture`,
        );
      }
      if (lora && parent.config.lora === undefined) {
        model = addLora(parent, lora, { seed });
        disposeModel(parent);
        id = await storeBase(model, parentId);
      } else {
        model = parent;
        id = parentId;
      }
    }
    resetContext(ctx);
    ctx.current = { id, model, round: r };
    return ctx.current;
  }

  async function runProposal(id: number): Promise<void> {
    for (;;) {
      const p = proposalOf(id);
      if (!p || p.status !== 'open' || p.coordinator !== me) return;
      const r = p.finalized.length;
      const k = key(id, r);
      let ctx: ProposalContext;
      try {
        ctx = await prepare(p);
      } catch (error) {
        if (!isProposalFault(error)) throw error;
        await failProposal(id, error as Error);
        return;
      }
      const pending = recovered.closed.get(k);
      if (pending && !recovered.committed.has(k)) {
        await commit(ctx, pending);
        continue;
      }
      let outcome: 'committed' | 'failed';
      try {
        outcome = await runRound(ctx, r);
      } catch (error) {
        // Start the round over from the journal: the base again, a fresh strategy, every journaled update.
        resetContext(ctx);
        throw error;
      }
      if (outcome === 'failed' || closed) return;
    }
  }

  async function failProposal(id: number, error: Error) {
    const reason = `${(error as { code?: string }).code ?? 'E_ROUND'}: ${error.message}`.slice(0, 500);
    logger.error({ proposal: id }, `failing proposal: ${reason}`);
    for (;;) {
      if (closed) return;
      try {
        await submitChecked({ signer, network, calls: [{ type: 'failRound', proposal: id, reason }] });
        emit({ type: 'failed', proposal: id, reason });
        return;
      } catch (e) {
        if (e instanceof ProtocolRejection) {
          logger.error({ err: e }, 'failRound was rejected');
          return;
        }
        logger.warn({ err: e }, 'submitting failRound failed; retrying');
        await sleep(2000);
      }
    }
  }

  async function runRound(ctx: ProposalContext, r: number): Promise<'committed' | 'failed'> {
    const p = ctx.proposal;
    const k = key(p.id, r);
    const base = await baseModel(ctx, r);
    const baseBytes = (await store.getManifest(base.id))!.size;
    if (!ctx.strategy) {
      try {
        const weights = getWeights(base.model, { names: trainableNames(base.model) });
        ctx.strategy = createStrategy(ctx.spec, weights);
        ctx.maxValues = weights.reduce((n, t) => n + t.data.length, 0);
      } catch (error) {
        await failProposal(p.id, error as Error);
        return 'failed';
      }
    }
    ctx.strategy.configureRound(r);
    if (r === 0 && ctx.baseEvalLoss === null) {
      ctx.baseEvalLoss = (
        await evaluateHeldOut(base.model, ctx.dataset, ctx.manifest, { maxExamples: evalExamples })
      ).loss;
    }
    const deadlineSpan = p.round.roundDeadline * 1000;
    const previous = recovered.rounds.get(k);
    let wake = () => {};
    const round: LiveRound = {
      proposal: p.id,
      round: r,
      attempt: previous?.attempt ?? 0,
      base: { id: base.id, bytes: baseBytes },
      deadlineMs: previous ? Math.max(previous.deadlineMs, Date.now() + 15_000) : Date.now() + deadlineSpan,
      slots: previous?.slots ?? 0,
      tasks: new Map((previous?.tasks ?? []).map((t) => [t.account, t])),
      accepted: new Map(),
      answered: new Set(),
      closing: false,
      wake: () => wake(),
    };
    for (const rec of recovered.updates.get(k) ?? []) {
      const folded = fold(ctx, rec.account, rec.samples, rec.payload);
      if (!folded.ok) {
        logger.error({ account: rec.account, code: folded.code }, 'a journaled update no longer folds in');
        continue;
      }
      round.accepted.set(rec.account, { record: { ...rec, payload: NO_PAYLOAD } });
    }
    if (previous && previous.base !== base.id) {
      throw new CoordinatorError(
        'E_JOURNAL_MISMATCH',
        `journal says round ${k} starts from ${previous.base}, not ${base.id}`,
      );
    }
    live = round;
    const started = Date.now();
    try {
      if (!previous) {
        // Wait (within the deadline) until enough registered workers are connected to hand out the tasks.
        const need = p.round.minWorkers;
        while (eligible(p.id, r).length < need && Date.now() < round.deadlineMs && !closed) await sleep(250);
        const who = eligible(p.id, r);
        // Room for late joiners up to minWorkers; at most maxWorkers plus the over-selection.
        round.slots = Math.max(1, Math.min(taskCap(ctx), Math.max(who.length, need)));
        for (const account of who.slice(0, round.slots)) {
          const task = newTask(round, account);
          if (task) round.tasks.set(account, task);
        }
        await journalRound(round);
      }
      emit({
        type: 'roundStarted',
        proposal: p.id,
        round: r,
        attempt: round.attempt,
        base: base.id,
        deadlineMs: round.deadlineMs,
        tasks: round.tasks.size,
        resumed: previous !== undefined,
      });
      logger.info(
        {
          proposal: p.id,
          round: r,
          tasks: round.tasks.size,
          resumed: previous !== undefined,
          accepted: round.accepted.size,
        },
        'round started',
      );
      for (const task of round.tasks.values()) if (!round.accepted.has(task.account)) sendTask(round, task);
      for (;;) {
        // Until an update, a failed task, a new worker or the deadline; the timer goes when woken early.
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, Math.max(0, round.deadlineMs - Date.now()));
          function done() {
            clearTimeout(timer);
            resolve();
          }
          wake = done;
        });
        if (closed) return 'failed';
        const all = [...round.tasks.keys()].every((a) => round.accepted.has(a) || round.answered.has(a));
        const full = round.accepted.size >= p.round.maxWorkers;
        const late = Date.now() >= round.deadlineMs;
        if ((all || full || late) && round.accepted.size >= p.round.minWorkers) break;
        // Still waiting, or everyone answered with too few accepted: the deadline decides on a retry.
        if (!late) continue;
        if (round.attempt >= maxRetries) {
          round.closing = true;
          await failProposal(
            p.id,
            new CoordinatorError(
              'E_TOO_FEW_UPDATES',
              `round ${r}: ${round.accepted.size} accepted update(s), minWorkers is ${p.round.minWorkers}, after ${round.attempt + 1} attempt(s)`,
            ),
          );
          return 'failed';
        }
        round.attempt += 1;
        round.deadlineMs = Date.now() + deadlineSpan;
        round.answered.clear();
        for (const account of eligible(p.id, r)) {
          if (!round.tasks.has(account)) {
            const task = newTask(round, account);
            if (task) round.tasks.set(account, task);
          }
        }
        await journalRound(round);
        emit({
          type: 'roundRetried',
          proposal: p.id,
          round: r,
          attempt: round.attempt,
          accepted: round.accepted.size,
        });
        logger.warn(
          { proposal: p.id, round: r, attempt: round.attempt, accepted: round.accepted.size },
          'too few updates; retrying the round',
        );
        for (const task of round.tasks.values()) if (!round.accepted.has(task.account)) sendTask(round, task);
      }
      round.closing = true;
      const record = await close(ctx, round);
      const seconds = (Date.now() - started) / 1000;
      metrics.inc('fedtune_round_seconds_total', 'Wall time spent in rounds', {}, seconds);
      metrics.set('fedtune_last_round_seconds', 'Wall time of the last round, start to close', seconds);
      await commit(ctx, record);
      return 'committed';
    } finally {
      if (live === round) live = null;
    }
  }

  /** Aggregates, evaluates and stores the round's checkpoint, and journals the call that commits it. */
  async function close(ctx: ProposalContext, round: LiveRound): Promise<ClosedRecord> {
    const t0 = performance.now();
    const agg = ctx.strategy!.aggregate();
    const aggregationMs = performance.now() - t0;
    metrics.inc('fedtune_aggregation_seconds_total', 'Time spent aggregating', {}, aggregationMs / 1000);
    metrics.set(
      'fedtune_last_aggregation_seconds',
      'Aggregation time of the last round',
      aggregationMs / 1000,
    );
    const model = ctx.current!.model;
    setWeights(model, agg.weights, { partial: true });
    const evaluation = await evaluateHeldOut(model, ctx.dataset, ctx.manifest, { maxExamples: evalExamples });
    const bytes = modelToSafetensors(model);
    const { id } = await store.put(bytes, {
      model: ctx.config as never,
      parent: round.base.id,
      proposal: round.proposal,
      round: round.round,
    });
    ctx.current = { id, model, round: round.round + 1 };
    const accepted = [...round.accepted.values()].map((a) => a.record);
    const included = new Set(agg.included);
    const contributors = accepted
      .filter((u) => included.has(u.account))
      .sort((a, b) => (a.account < b.account ? -1 : 1));
    const leaves = accepted.map((u) => ({ account: u.account, updateHash: u.updateHash }));
    const tree = updatesTree(leaves);
    const shardLeaves = [...new Set(contributors.flatMap((c) => c.shards))]
      .sort((a, b) => a - b)
      .map((s) => fromHex(ctx.manifest.shards[s]!.leaf));
    const totalSamples = contributors.reduce((n, c) => n + c.samples, 0);
    const trainLoss =
      contributors.reduce((s, c) => s + c.trainLoss * c.samples, 0) / Math.max(1, totalSamples);
    const extra = [
      { name: 'updates', value: accepted.length },
      { name: 'aggregationMs', value: Math.round(aggregationMs * 1000) / 1000 },
      ...(evaluation.bitsPerByte !== undefined
        ? [{ name: 'bitsPerByte', value: evaluation.bitsPerByte }]
        : []),
      ...(evaluation.accuracy !== undefined ? [{ name: 'accuracy', value: evaluation.accuracy }] : []),
      ...(round.round === 0 && ctx.baseEvalLoss !== null
        ? [{ name: 'baseEvalLoss', value: ctx.baseEvalLoss }]
        : []),
    ];
    const transfers = await rewards(ctx, contributors);
    const record: ClosedRecord = {
      t: 'closed',
      proposal: round.proposal,
      round: round.round,
      call: {
        checkpoint: { id: id as Hex32, bytes: bytes.length, uri: httpUrl },
        updatesRoot: tree.root,
        contributors: contributors.map((c) => ({ account: c.account, samples: c.samples, shards: c.shards })),
        datasetShardsRoot:
          shardLeaves.length > 0 ? toHex(merkleRoot(shardLeaves)) : (`0x${'0'.repeat(64)}` as Hex32),
        metrics: { trainLoss, evalLoss: evaluation.loss, extra },
      },
      transfers,
      leaves,
    };
    await write(record);
    emit({
      type: 'roundClosed',
      proposal: round.proposal,
      round: round.round,
      accepted: accepted.length,
      checkpointId: id,
      evalLoss: evaluation.loss,
      baseEvalLoss: round.round === 0 ? ctx.baseEvalLoss : null,
      aggregationMs,
    });
    logger.info(
      { proposal: round.proposal, round: round.round, checkpoint: id, evalLoss: evaluation.loss },
      'round aggregated',
    );
    return record;
  }

  /** The round's reward split in proportion to accepted samples (floor; dust stays with the coordinator). */
  async function rewards(
    ctx: ProposalContext,
    contributors: { account: string; samples: number }[],
  ): Promise<{ dest: string; value: string }[]> {
    const total = BigInt(ctx.proposal.round.rewardPerRound || '0');
    const samples = BigInt(contributors.reduce((n, c) => n + c.samples, 0));
    if (total === 0n || samples === 0n) return [];
    const ed = BigInt(chain.api.consts.balances.existentialDeposit.toString());
    const out: { dest: string; value: string }[] = [];
    for (const c of contributors) {
      if (c.account === me) continue;
      const value = (total * BigInt(c.samples)) / samples;
      if (value === 0n) continue;
      if (value < ed) {
        const account = (await chain.api.query.system.account(c.account)) as unknown as {
          data: { free: { toString(): string } };
        };
        if (BigInt(account.data.free.toString()) === 0n) {
          logger.warn(
            { account: c.account, value: value.toString() },
            'reward below the existential deposit of an empty account; skipped',
          );
          continue;
        }
      }
      out.push({ dest: c.account, value: value.toString() });
    }
    return out;
  }

  /** Submits the journaled finalizeRound (once: a round already on chain is only recorded), then sends receipts. */
  async function commit(ctx: ProposalContext, record: ClosedRecord): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      if (closed) return;
      await refresh();
      const p = proposalOf(record.proposal);
      const onChain = p?.finalized[record.round];
      let blockHash: string;
      let blockNumber: number;
      if (onChain) {
        if (onChain.checkpoint.id !== record.call.checkpoint.id) {
          logger.error(
            { proposal: record.proposal, round: record.round },
            'a different checkpoint was committed for this round',
          );
        }
        blockNumber = onChain.block;
        blockHash = (await chain.api.rpc.chain.getBlockHash(blockNumber)).toHex();
        logger.info({ proposal: record.proposal, round: record.round }, 'round already committed on chain');
      } else if (!p || p.status !== 'open') {
        logger.warn(
          { proposal: record.proposal, status: p?.status },
          'proposal no longer open; not committing',
        );
        return;
      } else {
        const t0 = Date.now();
        try {
          const inclusion = await submitChecked({
            signer,
            network,
            calls: [
              { type: 'finalizeRound', proposal: record.proposal, round: record.round, ...record.call },
            ],
            transfers: record.transfers as Transfer[],
          });
          blockHash = inclusion.blockHash;
          blockNumber = inclusion.blockNumber;
          metrics.set(
            'fedtune_last_commit_seconds',
            'Seconds from round close to on-chain finality',
            (Date.now() - t0) / 1000,
          );
        } catch (error) {
          if (closed) return;
          if (error instanceof ProtocolRejection) {
            await failProposal(record.proposal, error);
            return;
          }
          logger.warn({ err: error, attempt }, 'committing the round failed; retrying');
          await sleep(Math.min(30_000, 1000 * 2 ** attempt));
          continue;
        }
      }
      await write({
        t: 'committed',
        proposal: record.proposal,
        round: record.round,
        blockHash,
        blockNumber,
      });
      metrics.inc('fedtune_rounds_committed_total', 'Rounds committed on chain');
      emit({
        type: 'committed',
        proposal: record.proposal,
        round: record.round,
        checkpointId: record.call.checkpoint.id,
        blockHash,
        blockNumber,
        evalLoss: record.call.metrics.evalLoss,
        rewards: record.transfers.map((t) => ({ account: t.dest, amount: t.value })),
      });
      const tree = updatesTree(record.leaves);
      const leaves = record.leaves.length;
      for (const leaf of record.leaves) {
        const proof = tree.proof(leaf.account)!;
        server.send(leaf.account, {
          kind: 'roundResult',
          roundResult: {
            proposal: record.proposal,
            round: record.round,
            checkpointId: record.call.checkpoint.id,
            updatesRoot: fromHex(tree.root),
            proof: proof.siblings.map((s) => fromHex(s)),
            leafIndex: proof.leafIndex,
            leafCount: leaves,
            blockHash,
          },
        });
      }
      // The next round starts from this checkpoint: make sure the context holds it.
      if (ctx.current?.id !== record.call.checkpoint.id) resetContext(ctx);
      return;
    }
  }

  async function openProposal(p: RoundProposal): Promise<void> {
    try {
      await prepare(p);
    } catch (error) {
      if (!isProposalFault(error)) throw error;
      await failProposal(p.id, error as Error);
      return;
    }
    try {
      const inclusion = await submitChecked({
        signer,
        network,
        calls: [{ type: 'openRound', proposal: p.id, coordinatorEndpoint: server.url }],
      });
      emit({ type: 'opened', proposal: p.id, blockNumber: inclusion.blockNumber });
    } catch (error) {
      logger.warn({ err: error, proposal: p.id }, 'opening the proposal failed');
      await sleep(1000);
    }
  }

  // ---- the main loop --------------------------------------------------------------------------------
  const mine = () => {
    const n = net();
    if (!n) return { open: [] as RoundProposal[], approved: [] as RoundProposal[] };
    return { open: openRounds(n, me), approved: isCoordinator(n, me) ? approvedRounds(n) : [] };
  };
  let idleWaiters: (() => void)[] = [];
  let dirty = true;
  let running: Promise<void> | null = null;
  const poke = () => {
    dirty = true;
    if (!running && !closed) running = loop().finally(() => (running = null));
  };
  let backoffMs = 1000;
  async function loop() {
    while (dirty && !closed) {
      dirty = false;
      try {
        const { open, approved } = mine();
        if (open.length > 0) {
          await runProposal(open[0]!.id);
          dirty = true;
        } else if (approved.length > 0) {
          await openProposal(approved[0]!);
          dirty = true;
        }
      } catch (error) {
        if (closed) break;
        logger.error({ err: error, retryInMs: backoffMs }, 'coordinator step failed; retrying');
        await sleep(backoffMs);
        backoffMs = Math.min(30_000, backoffMs * 2);
        dirty = true;
        continue;
      }
      backoffMs = 1000;
      const { open, approved } = mine();
      if (open.length === 0 && approved.length === 0) {
        for (const w of idleWaiters) w();
        idleWaiters = [];
      }
    }
  }

  await refresh();
  const head = await finalizedHead(chain);
  logger.info({ height: state.height, head: head.number, network }, 'coordinator following the chain');
  const unsubscribe = await chain.api.rpc.chain.subscribeFinalizedHeads(() => {
    void refresh().then(poke);
  });
  poke();

  const shutdown = async (abort: boolean) => {
    if (closed) return;
    closed = true;
    unsubscribe();
    live?.wake();
    await server.close();
    if (!abort) await running?.catch(() => undefined);
    await syncing.catch(() => undefined);
    await journal.close();
    for (const ctx of contexts.values()) {
      if (ctx.current) disposeModel(ctx.current.model);
      ctx.strategy?.dispose();
    }
  };

  return {
    url: server.url,
    httpUrl,
    server,
    store,
    metrics,
    state: () => state,
    idle: () =>
      new Promise<void>((resolve) => {
        const { open, approved } = mine();
        if (open.length === 0 && approved.length === 0 && !running) resolve();
        else idleWaiters.push(resolve);
      }),
    close: () => shutdown(false),
    abort: () => shutdown(true),
  };
}

/**
 * Whether an error while preparing a proposal is the proposal's own (a bad config, spec or encoding, a manifest that is
 * not the registered dataset): then it is failed on chain. Anything else (a manifest server down, data missing here)
 * is this coordinator's problem, retried while logged.
 */
const PROPOSAL_FAULTS = new Set([
  'E_MODEL_UNKNOWN',
  'E_MODEL_CONFIG',
  'E_MODEL_MISMATCH',
  'E_STRATEGY_SPEC',
  'E_BAD_ENCODING',
  'E_MANIFEST_MISMATCH',
  'E_UNKNOWN_DATASET',
]);

function isProposalFault(error: unknown): boolean {
  return PROPOSAL_FAULTS.has((error as { code?: string }).code ?? '');
}

function sortKeys(value: object): object {
  return Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : 1)));
}
