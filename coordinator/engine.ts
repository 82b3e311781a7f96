// The round engine: wires the life-cycle modules (prepare, assign, accept, close, rewards, commit, receipts) to the chain,
// the worker server and the journal, and runs the loop: open approved proposals, run their rounds, commit them.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { openStore, type CheckpointStore } from '../checkpoints/index.ts';
import { fetchManifest, type DatasetManifest } from '../datasets/index.ts';
import {
  approvedRounds,
  isCoordinator,
  isWorker,
  openRounds,
  submitChecked,
  type ChainClient,
  type Hex32,
  type KeyringPair,
  type ProtocolState,
  type RoundProposal,
} from '../pallet-bindings/index.ts';
import { acceptUpdate } from './accept.ts';
import { resetContext } from './base.ts';
import { sleep, systemClock, type Clock } from './clock.ts';
import { failProposal, type ChainDependencies } from './commit.ts';
import { CoordinatorError, codeOf } from './errors.ts';
import type { CoordinatorEvent } from './events.ts';
import { ChainView } from './follow.ts';
import { httpRoutes } from './http.ts';
import { Metrics } from './metrics.ts';
import { PROPOSAL_FAULTS, prepareProposal, type ProposalContext } from './prepare.ts';
import { RoundLog } from './records.ts';
import { handOn, watchSilent, welcome, type LiveRound, type RoundDependencies } from './round.ts';
import { runProposal, type ProposalRunDependencies } from './run.ts';
import { startCoordinatorServer, type CoordinatorServer, type ServerLimits } from './server.ts';

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
  /** Attempts to prepare a proposal (manifest unreachable, data missing) before it is failed on chain (default 3). */
  maxPrepareAttempts?: number;
  /** How long a worker with an open task may stay away before its slot goes to another worker (default 10 s). */
  silentAfterMs?: number;
  /** Held-out examples scored after each round (default 256, evenly spaced). */
  evalExamples?: number;
  /** Time as the engine sees it (tests move it forward). */
  clock?: Clock;
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

export async function startCoordinator(options: CoordinatorOptions): Promise<Coordinator> {
  const { chain, signer, network, logger } = options;
  const me = signer.address;
  const clock = options.clock ?? systemClock;
  const stopping = new AbortController();
  const emit = (event: CoordinatorEvent) => {
    try {
      options.onEvent?.(event);
    } catch (error) {
      logger.warn({ err: error }, 'event handler failed');
    }
  };

  await mkdir(options.dataDir, { recursive: true });
  const store = await openStore(join(options.dataDir, 'store'));
  const log = await RoundLog.open(join(options.dataDir, 'journal.bin'));
  if (log.recoveredCount > 0)
    logger.info({ records: log.recoveredCount, truncatedBytes: log.truncatedBytes }, 'journal replayed');
  const view = new ChainView(chain, network, clock, logger, options.from);
  const contexts = new Map<number, ProposalContext>();
  const manifests = new Map<string, DatasetManifest>();
  const metrics = new Metrics();
  let live: { round: LiveRound; ctx: ProposalContext } | null = null;
  const closed = () => stopping.signal.aborted;

  const chainDeps: ChainDependencies = {
    chain,
    signer,
    network,
    state: () => view.state,
    syncTo: (h) => view.syncTo(h),
    clock,
    signal: stopping.signal,
    logger,
  };

  const server = await startCoordinatorServer({
    host: options.host,
    port: options.port,
    coordinator: me,
    network,
    limits: options.limits,
    metrics,
    logger,
    http: httpRoutes(store, manifests),
    hooks: {
      async admit(account) {
        const registered = () => view.net() !== undefined && isWorker(view.net()!, account);
        if (!registered()) await view.refresh();
        if (registered()) return { ok: true };
        return {
          ok: false,
          code: 'E_NOT_REGISTERED',
          message: `${account} is not registered as a worker of network ${network}: run \`fedtune worker register\``,
        };
      },
      expectedUpload(account, taskId) {
        const task = live?.round.assignment.tasks.get(account);
        if (!live || !task || task.taskId !== taskId) return null;
        const a = live.round.assignment;
        return {
          proposal: a.proposal,
          round: a.round,
          base: live.round.base.id,
          codec: live.ctx.updateEncoding.codec,
        };
      },
      receiptFor(account, taskId, payloadSha256) {
        const got = live?.round.accepted.get(account);
        if (!got || got.taskId !== taskId) return null;
        return Buffer.from(got.payloadSha256).equals(Buffer.from(payloadSha256)) ? got.updateHash : null;
      },
      acceptUpdate: (update) => accept(update),
      taskFailed(account, failure) {
        const current = live;
        if (!current || current.round.assignment.tasks.get(account)?.taskId !== failure.taskId) return;
        logger.warn({ account, code: failure.code }, `worker failed its task: ${failure.message}`);
        emit({
          type: 'taskHandedOn',
          proposal: current.ctx.id,
          round: current.round.assignment.round,
          from: account,
          reason: failure.code,
        });
        void handOn(current.round, account, current.ctx, roundDeps).catch(stepFailed);
      },
      connected(account) {
        if (live) void welcome(live.round, account, live.ctx, roundDeps).catch(stepFailed);
      },
      disconnected(account) {
        if (live) watchSilent(live.round, account, live.ctx, roundDeps);
      },
    },
  });
  const publicUrl = options.publicUrl ?? server.httpUrl;

  const roundDeps: RoundDependencies = {
    network,
    clock,
    net: () => view.net(),
    connected: () => server.connectedAccounts(),
    send: (account, frame) => server.send(account, frame),
    journal: (record) => log.write(record),
    publicUrl,
    overselect: options.overselect ?? 0.25,
    silentAfterMs: options.silentAfterMs ?? 10_000,
    onTaskSent: (round, task) =>
      emit({
        type: 'taskSent',
        proposal: round.assignment.proposal,
        round: round.assignment.round,
        account: task.account,
        shards: task.shards,
      }),
  };

  /** A journal that cannot be written stops the coordinator, so that a restart replays only what is durable. */
  function stepFailed(error: unknown) {
    logger.fatal({ err: error }, 'the journal cannot be written; stopping the coordinator');
    void shutdown(true);
  }

  async function accept(update: Parameters<typeof acceptUpdate>[0]['update']) {
    const current = live;
    const verdict = acceptUpdate({
      assignment: current?.round.assignment ?? null,
      closing: current?.round.closing ?? true,
      accepted: current?.round.accepted ?? new Map(),
      maxWorkers: current?.ctx.proposal.round.maxWorkers ?? 0,
      samples: current?.round.samples ?? 0,
      strategy: current?.ctx.strategy as never,
      codec: current?.ctx.updateEncoding.codec ?? '',
      maxValues: current?.ctx.maxValues ?? 0,
      update,
    });
    const where = { proposal: update.begin.proposal, round: update.begin.round, account: update.account };
    if (!verdict.ok) {
      // A rejected worker may still send a good update; one that gives up says so with TaskFailed.
      emit({ type: 'updateRejected', ...where, code: verdict.code, message: verdict.message });
      logger.info({ account: update.account, code: verdict.code }, `update rejected: ${verdict.message}`);
      return verdict;
    }
    const { record } = verdict;
    // The payload is folded in and goes to the journal; memory keeps only what the receipts and the commit need.
    current!.round.accepted.set(update.account, { ...record, payload: new Uint8Array(0) });
    try {
      await log.write(record);
    } catch (error) {
      stepFailed(error);
      throw error;
    }
    emit({ type: 'updateAccepted', ...where, samples: record.samples, bytes: update.payload.length });
    current!.round.signal.wake();
    return { ok: true as const, updateHash: record.updateHash };
  }

  async function manifestFor(root: Hex32): Promise<DatasetManifest> {
    const cached = manifests.get(root);
    if (cached) return cached;
    const record = view.net()?.datasets[root];
    if (!record) throw new CoordinatorError('E_UNKNOWN_DATASET', `dataset ${root} is not registered`);
    const manifest = await fetchManifest(record.manifestUri, root);
    manifests.set(root, manifest);
    return manifest;
  }

  /** A proposal's context, prepared once; a fault of the proposal's own, or too many failed tries, fails it on chain. */
  const prepareFailures = new Map<number, number>();
  async function prepared(p: RoundProposal): Promise<ProposalContext | null> {
    const cached = contexts.get(p.id);
    if (cached) {
      cached.proposal = p;
      return cached;
    }
    try {
      const ctx = await prepareProposal(p, { manifestFor, data: options.data });
      contexts.set(p.id, ctx);
      return ctx;
    } catch (error) {
      const tries = (prepareFailures.get(p.id) ?? 0) + 1;
      prepareFailures.set(p.id, tries);
      const limit = options.maxPrepareAttempts ?? 3;
      if (!PROPOSAL_FAULTS.has(codeOf(error)) && tries < limit) {
        logger.warn(
          { proposal: p.id, code: codeOf(error), attempt: tries, of: limit },
          `cannot prepare the proposal yet: ${(error as Error).message}`,
        );
        throw new CoordinatorError(codeOf(error), (error as Error).message);
      }
      if (await failProposal(p.id, error as Error, chainDeps))
        emit({ type: 'failRound', proposal: p.id, reason: (error as Error).message });
      return null;
    }
  }

  const runDeps: ProposalRunDependencies = {
    ...chainDeps,
    me,
    store,
    log,
    metrics,
    round: roundDeps,
    maxRetries: options.maxRetries ?? 2,
    evalExamples: options.evalExamples,
    downloadDir: join(options.dataDir, 'downloads'),
    net: () => view.net(),
    emit,
    setLive: (value) => (live = value),
    sendResult: (account, frame) => server.send(account, frame),
  };

  async function openProposal(p: RoundProposal): Promise<void> {
    if (!(await prepared(p))) return;
    try {
      const { inclusion } = await submitChecked(chain, {
        signer,
        network,
        calls: [{ type: 'openRound', proposal: p.id, coordinatorEndpoint: server.url }],
        state: view.state,
        sync: (to) => view.syncTo(to),
      });
      emit({ type: 'openRound', proposal: p.id, blockNumber: inclusion.blockNumber });
    } catch (error) {
      logger.warn(
        { proposal: p.id, code: codeOf(error) },
        `opening the proposal failed: ${(error as Error).message}`,
      );
      await sleep(clock, 1000, stopping.signal);
    }
  }

  // ---- the main loop: one step at a time, woken by new heads; failures back off ------------------------------------
  const mine = () => {
    const n = view.net();
    if (!n) return { open: [] as RoundProposal[], approved: [] as RoundProposal[] };
    return { open: openRounds(n, me), approved: isCoordinator(n, me) ? approvedRounds(n) : [] };
  };
  let idleWaiters: (() => void)[] = [];
  let dirty = true;
  let running: Promise<void> | null = null;
  let backoffMs = 1000;
  const poke = () => {
    dirty = true;
    if (!running && !closed()) running = loop().finally(() => (running = null));
  };
  async function loop() {
    while (dirty && !closed()) {
      dirty = false;
      try {
        const { open, approved } = mine();
        if (open.length > 0) {
          const ctx = await prepared(open[0]!);
          if (ctx) await runProposal(ctx, runDeps, view);
          dirty = true;
        } else if (approved.length > 0) {
          await openProposal(approved[0]!);
          dirty = true;
        }
      } catch (error) {
        if (closed()) break;
        logger.warn(
          { code: codeOf(error), retryInMs: backoffMs },
          `coordinator step failed: ${(error as Error).message}`,
        );
        await sleep(clock, backoffMs, stopping.signal);
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

  await view.refresh();
  logger.info({ height: view.state.height, network }, 'coordinator following the chain');
  await view.follow(poke);
  poke();

  async function shutdown(abort: boolean) {
    if (closed()) return;
    stopping.abort();
    live?.round.signal.wake();
    await server.close();
    if (!abort) await running?.catch(() => undefined);
    await view.stop();
    await log.close();
    for (const ctx of contexts.values()) resetContext(ctx);
  }

  return {
    url: server.url,
    httpUrl: publicUrl,
    server,
    store,
    metrics,
    state: () => view.state,
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
