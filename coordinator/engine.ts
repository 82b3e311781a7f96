// The round engine: wires the life-cycle modules (prepare, assign, accept, close, rewards, commit, receipts) to the chain,
// the worker server and the journal, and runs the loop: open approved proposals, run their rounds, commit them.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { openStore, type CheckpointStore } from '../checkpoints/index.ts';
import {
  approvedRounds,
  isBarredCoordinator,
  isCoordinator,
  openRounds,
  type ChainClient,
  type Hex32,
  type KeyringPair,
  type ProtocolState,
  type RoundProposal,
} from '../pallet-bindings/index.ts';
import { AckBook } from './acks.ts';
import { cohortStepper } from './cohort.ts';
import { resetContext } from './base.ts';
import { sleep, systemClock, type Clock } from './clock.ts';
import type { ChainDependencies } from './commit.ts';
import { codeOf } from './errors.ts';
import { engineHooks } from './hooks.ts';
import { eventEmitter, type CoordinatorEvent } from './events.ts';
import { ChainView } from './follow.ts';
import { httpRoutes } from './http.ts';
import { Metrics } from './metrics.ts';
import type { ProposalContext } from './prepare.ts';
import { Proposals } from './proposals.ts';
import type { KeepUpdates } from './publish.ts';
import { RoundLog } from './records.ts';
import type { LiveRound, RoundDependencies } from './round.ts';
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
  /** Folders a dataset's local (file) manifest URI must lie under; without them any local file is read. */
  manifestRoots?: string[];
  /** First block to read the protocol state from. */
  from?: number;
  limits?: Partial<ServerLimits>;
  /** Threads that check signatures and hash payloads (default: one fewer than the CPUs, 1–4; 0: on the event loop). */
  cryptoThreads?: number;
  /**
   * Run as a sub-coordinator: take part in the rounds of the coordinator at `url` with a cohort of at most `cohort`
   * workers, opening no proposal of its own (docs/rounds.md, "Hierarchical rounds").
   */
  parent?: { url: string; cohort: number };
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
  /** How many of a proposal's latest rounds keep their update payloads published (default 'all'). */
  keepUpdates?: KeepUpdates;
  /** How long close() lets the current step finish before it stops anyway (default 2 s). */
  stopGraceMs?: number;
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
  const emit = eventEmitter(options.onEvent, logger);

  await mkdir(options.dataDir, { recursive: true });
  const store = await openStore(join(options.dataDir, 'store'));
  const log = await RoundLog.open(join(options.dataDir, 'journal.bin'));
  if (log.recoveredCount > 0)
    logger.info({ records: log.recoveredCount, truncatedBytes: log.truncatedBytes }, 'journal replayed');
  const acks = new AckBook();
  const view = new ChainView(chain, network, clock, logger, options.from);
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

  const proposals = new Proposals({
    ...chainDeps,
    net: () => view.net(),
    data: options.data,
    manifestRoots: options.manifestRoots,
    maxPrepareAttempts: options.maxPrepareAttempts ?? 3,
    emit,
  });
  /** The server, once started: the round steps reach it through here (they are wired before it starts). */
  const serving: { server?: CoordinatorServer } = {};
  const roundDeps: RoundDependencies = {
    network,
    clock,
    net: () => view.net(),
    connected: () => serving.server?.connectedAccounts() ?? [],
    send: (account, frame) => serving.server?.send(account, frame) ?? false,
    journal: (record) => log.write(record),
    publicUrl: () => options.publicUrl ?? serving.server?.httpUrl ?? '',
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
  /** The endpoint openRound publishes: a login signed for any other (a relay) is refused. Filled once listening. */
  const endpoints: string[] = [];
  const server = await startCoordinatorServer({
    endpoints,
    host: options.host,
    port: options.port,
    coordinator: me,
    network,
    limits: options.limits,
    cryptoThreads: options.cryptoThreads,
    metrics,
    logger,
    http: httpRoutes(store, proposals.manifests),
    hooks: engineHooks({
      network,
      me,
      view,
      log,
      acks,
      round: roundDeps,
      live: () => live,
      emit,
      stepFailed,
      logger,
    }),
  });
  serving.server = server;
  endpoints.push(server.url);

  /** A journal that cannot be written stops the coordinator, so that a restart replays only what is durable. */
  function stepFailed(error: unknown) {
    logger.fatal({ err: error }, 'the journal cannot be written; stopping the coordinator');
    void shutdown(true);
  }

  const runDeps: ProposalRunDependencies = {
    ...chainDeps,
    me,
    store,
    log,
    acks,
    metrics,
    round: roundDeps,
    maxRetries: options.maxRetries ?? 2,
    evalExamples: options.evalExamples,
    keepUpdates: options.keepUpdates ?? 'all',
    downloadDir: join(options.dataDir, 'downloads'),
    net: () => view.net(),
    emit,
    setLive: (value) => (live = value),
    sendResult: (account, frame) => server.send(account, frame),
  };

  // A sub-coordinator takes part in its parent's rounds with its cohort, and opens no proposal of its own.
  const cohort = options.parent
    ? cohortStepper({ parent: options.parent, signer, network, logger, view, proposals, deps: runDeps })
    : null;

  // ---- the main loop: one step at a time, woken by new heads; failures back off ------------------------------------
  const mine = () => {
    const n = view.net();
    if (!n || cohort) return { open: [] as RoundProposal[], approved: [] as RoundProposal[] };
    // A barred coordinator opens nothing (the reducer would refuse it); its open rounds failed when it was barred.
    const mayOpen = isCoordinator(n, me) && !isBarredCoordinator(n, me);
    return { open: openRounds(n, me), approved: mayOpen ? approvedRounds(n) : [] };
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
        if (cohort) {
          if (await cohort.step()) dirty = true;
        } else if (open.length > 0) {
          const ctx = await proposals.prepared(open[0]!);
          if (ctx) await runProposal(ctx, runDeps, view);
          dirty = true;
        } else if (approved.length > 0) {
          await proposals.open(approved[0]!, server.url);
          dirty = true;
        }
      } catch (error) {
        if (closed()) break;
        logger.warn(
          { code: codeOf(error), retryInMs: backoffMs },
          `coordinator step failed: ${(error as Error).message}`,
        );
        logger.debug({ err: error }, 'the failed step');
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
    await cohort?.close();
    await server.close();
    // The current step may finish what it must (a commit in flight), but a stop never waits longer than the grace.
    if (!abort && running)
      await Promise.race([running.catch(() => undefined), sleep(clock, options.stopGraceMs ?? 2000)]);
    await view.stop();
    await log.close();
    for (const ctx of proposals.contexts.values()) resetContext(ctx);
  }

  return {
    url: server.url,
    httpUrl: roundDeps.publicUrl(),
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
