// Fault trials: `fedtune coordinator` as a real process, SIGKILLed at a seeded random point of a round (during
// uploads, during aggregation, between store and commit, after commit) and restarted on the same data dir, while
// in-process trainers keep working. Shared by test/rounds/faults.test.ts (CI size) and bench/faults.ts (full size).
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { runWorker, type RunningWorker } from '../../worker/index.ts';
import { BIN } from '../run-cli.ts';
import { approveProposal, logger, proposal, readState, setUp, until, type Fixture } from './helpers.ts';

export const KILL_POINTS = ['upload', 'aggregation', 'store-commit', 'after-commit'] as const;
export type KillPoint = (typeof KILL_POINTS)[number];

/** The event after which each kill point strikes (the n-th of its kind). */
const TRIGGER: Record<KillPoint, { type: string; nth: (workers: number) => number }> = {
  upload: { type: 'updateAccepted', nth: () => 1 },
  aggregation: { type: 'updateAccepted', nth: (w) => w },
  'store-commit': { type: 'roundClosed', nth: () => 1 },
  'after-commit': { type: 'finalizeRound', nth: () => 1 },
};

export interface TrialResult {
  trial: number;
  point: KillPoint;
  /** The proposal's status once settled: completed, or failed. */
  status: string;
  /** Updates the committed round holds (every trainer's, when none gave up). */
  contributors: number;
  killed: boolean;
  restarts: number;
  acknowledged: number;
  /** Acknowledged updates found among the committed round's contributors. */
  found: number;
  seconds: number;
}

export interface FaultSummary {
  trials: TrialResult[];
  /** finalizeRound calls the reducer refused because the round was already finalized. */
  committedTwice: number;
  /** finalizeRound batches (which carry the rewards) that the reducer refused or could not read. */
  paymentsWithoutRound: number;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** A small PRNG, so a seed names a sequence of kill points and delays. */
function mulberry32(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The codes a second finalizeRound of the same round gets from the reducer. */
const TWICE = new Set(['E_ROUND_OUT_OF_ORDER', 'E_NOT_OPEN', 'E_CHECKPOINT_EXISTS']);

/** The proposal once it is completed or failed. */
async function settled(f: Fixture, id: number) {
  const end = Date.now() + 180_000;
  for (;;) {
    const p = await proposal(f, id);
    if (p.status === 'completed' || p.status === 'failed') return p;
    if (Date.now() > end) throw new Error(`proposal ${id} is still ${p.status}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

interface CoordinatorProcess {
  proc: ChildProcess;
  events: { type: string; proposal?: number }[];
  exited: Promise<void>;
}

function startCoordinatorProcess(f: Fixture, port: number): Promise<CoordinatorProcess> {
  return new Promise((resolve, reject) => {
    const proc = spawn(
      process.execPath,
      [
        BIN,
        'coordinator',
        '--seed',
        '//Ferdie',
        '--listen',
        `127.0.0.1:${port}`,
        '--data-dir',
        join(f.dir, 'coordinator'),
        '--eval-examples',
        '16',
        '--json',
      ],
      {
        env: {
          ...process.env,
          FEDTUNE_CHAIN: f.devnet.url,
          FEDTUNE_NETWORK: f.network,
          FEDTUNE_LOG_LEVEL: 'error',
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const events: CoordinatorProcess['events'] = [];
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      let e: { type: string; proposal?: number };
      try {
        e = JSON.parse(line) as { type: string };
      } catch {
        return;
      }
      events.push(e);
      if (e.type === 'ready') resolve({ proc, events, exited });
    });
    proc.once('exit', (code) => reject(new Error(`coordinator exited ${code} before it was ready`)));
  });
}

export async function runFaultTrials(params: {
  trials: number;
  seed?: number;
  progress?: (message: string) => void;
}): Promise<FaultSummary> {
  const random = mulberry32(params.seed ?? 1);
  const f = await setUp('faults');
  const port = await freePort();
  const url = `ws://127.0.0.1:${port}`;
  let coordinator: CoordinatorProcess | null = null;
  const workers: RunningWorker[] = [];
  try {
    coordinator = await startCoordinatorProcess(f, port);
    for (const [i, signer] of f.workers.entries()) {
      workers.push(
        runWorker({
          url,
          signer,
          cacheDir: join(f.dir, `worker-${i}`),
          logger,
          reconnect: { minMs: 100, maxMs: 400 },
        }),
      );
    }
    await Promise.all(workers.map((w) => w.ready));
    const trials: TrialResult[] = [];
    for (let trial = 0; trial < params.trials; trial++) {
      const point = KILL_POINTS[Math.floor(random() * KILL_POINTS.length)]!;
      const delayMs = Math.floor(random() * 50);
      const started = Date.now();
      const id = await approveProposal(
        f,
        { minWorkers: 3, maxWorkers: 3, roundDeadline: 120 },
        { localSteps: 2, batchSize: 2 },
      );
      const trigger = TRIGGER[point];
      let restarts = 0;
      const current: CoordinatorProcess = coordinator!;
      const seen = await until(
        () =>
          current.events.filter((e) => e.type === trigger.type && e.proposal === id).length >=
            trigger.nth(workers.length) ||
          (current.events.some((e) => e.type === 'finalizeRound' && e.proposal === id) &&
            point !== 'after-commit'),
        180_000,
      );
      let killed = false;
      if (seen) {
        await new Promise((r) => setTimeout(r, delayMs));
        if (current.proc.exitCode === null) {
          current.proc.kill('SIGKILL');
          killed = true;
        }
        await current.exited;
        coordinator = await startCoordinatorProcess(f, port);
        restarts += 1;
      }
      const p = await settled(f, id);
      const acked = workers
        .map((w) => w.receipts().find((r) => r.proposal === id))
        .filter((r) => r !== undefined);
      const contributors = new Set((p.finalized[0]?.contributors ?? []).map((c) => c.account));
      const result: TrialResult = {
        trial,
        point,
        killed,
        restarts,
        acknowledged: acked.length,
        found: acked.filter((r) => contributors.has(r.account)).length,
        status: p.status,
        contributors: contributors.size,
        seconds: (Date.now() - started) / 1000,
      };
      trials.push(result);
      params.progress?.(
        `trial ${trial + 1}/${params.trials}: killed at ${point} (+${delayMs} ms), ${result.found}/${result.acknowledged} acknowledged updates committed, ${result.seconds.toFixed(1)} s`,
      );
    }
    const state = await readState(f);
    const refusedFinalize = state.audit.filter((a) => a.callType === 'finalizeRound');
    return {
      trials,
      committedTwice: refusedFinalize.filter((a) => TWICE.has(a.code)).length,
      paymentsWithoutRound:
        refusedFinalize.length + state.ignored.filter((e) => e.signer === f.coordinator.address).length,
    };
  } finally {
    coordinator?.proc.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.close()));
    await f.close();
  }
}
