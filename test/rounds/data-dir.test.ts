// A data directory the coordinator cannot write: a journal it may not append to stops it at start with a code; a disk
// that fills up mid-round is reported (ENOSPC), nothing unwritten is acknowledged, and once there is room again the
// same coordinator completes the round.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { pino } from 'pino';
import { encodeUpdate } from '../../aggregation/index.ts';
import { startCoordinator, type Coordinator } from '../../coordinator/index.ts';
import { modelConfig, paramSpecs } from '../../model/index.ts';
import type { Task } from '../../proto/index.ts';
import { connectWorker, type WorkerConnection } from '../../worker/index.ts';
import { approveProposal, logger, proposal, setUp, until, type Fixture } from './helpers.ts';

const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: 'ignore' });

/** Resolves with the first truthy value of `fn`, polled every 200 ms for at most two minutes. */
async function poll<T>(fn: () => Promise<T | undefined | false>): Promise<T> {
  const end = Date.now() + 120_000;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('fedtune coordinator: a data directory that cannot be written', function () {
  this.timeout(300_000);
  let f: Fixture;
  let coordinator: Coordinator | null = null;
  let conn: WorkerConnection | null = null;
  let mounted: string | null = null;

  before(async () => {
    f = await setUp('data-dir');
  });
  after(async () => {
    await conn?.close();
    await coordinator?.abort();
    if (mounted) run('umount', [mounted]);
    await f?.close();
  });

  const start = (dataDir: string, port = 0) =>
    startCoordinator({
      chain: f.client,
      signer: f.coordinator,
      network: f.network,
      dataDir,
      port,
      logger,
      evalExamples: 16,
    });

  it('refuses to start on a journal it may not append to, with a code', async function () {
    const dataDir = join(f.dir, 'immutable');
    mkdirSync(dataDir, { recursive: true });
    const journal = join(dataDir, 'journal.bin');
    writeFileSync(journal, '');
    try {
      run('chattr', ['+i', journal]);
    } catch {
      this.skip(); // a file system without immutable files: nothing to test here
    }
    try {
      const error = await start(dataDir).then(
        () => null,
        (e: unknown) => e as { code?: string; message: string },
      );
      expect(error?.code).to.equal('E_DATA_DIR');
      expect(error?.message).to.match(/journal.*writable/);
    } finally {
      run('chattr', ['-i', journal]);
    }
  });

  it('says the disk is full, acknowledges nothing it could not record, and completes the round once there is room', async function () {
    const dataDir = join(f.dir, 'small-disk');
    mkdirSync(dataDir, { recursive: true });
    try {
      run('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', dataDir]);
      mounted = dataDir;
    } catch {
      this.skip(); // mounting needs root: CI runs as root
    }
    const lines: string[] = [];
    const warnings = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
    coordinator = await startCoordinator({
      chain: f.client,
      signer: f.coordinator,
      network: f.network,
      dataDir,
      port: 0,
      logger: warnings,
      evalExamples: 16,
    });
    const tasks: Task[] = [];
    conn = connectWorker({
      url: coordinator.url,
      signer: f.workers[0]!,
      logger,
      onTask: (t) => tasks.push(t),
      reconnect: { minMs: 100, maxMs: 400 },
    });
    await conn.ready;
    const id = await approveProposal(f, { minWorkers: 1, maxWorkers: 1, roundDeadline: 120 });
    const task = await until(() => tasks.find((t) => t.proposal === id));
    const hyper = JSON.parse(task.hyperparamsJson) as { localSteps: number; batchSize: number };
    const payload = encodeUpdate(
      paramSpecs(modelConfig('tiny')).map((p) => ({
        name: p.name,
        shape: p.shape,
        data: new Float32Array(p.shape.reduce((a, b) => a * b, 1)),
      })),
      { codec: 'dense' },
    );

    // The disk fills up before the update arrives.
    const filler = join(dataDir, 'filler');
    try {
      writeFileSync(filler, Buffer.alloc(8 * 1024 * 1024));
    } catch {
      // ENOSPC: the filler holds whatever room there was
    }
    // The worker uploads; the coordinator cannot record it, says so, and the worker begins again after a while.
    const acknowledged = conn.upload({
      taskId: task.taskId,
      proposal: task.proposal,
      round: task.round,
      base: task.base.id,
      codec: 'dense',
      payload,
      samples: hyper.localSteps * hyper.batchSize,
      shards: task.shards,
      trainLoss: 3,
    });
    let acked = false;
    acknowledged.then(
      () => (acked = true),
      () => undefined,
    );
    // A clear error names the full disk; nothing is acknowledged or committed while it lasts.
    await poll(async () => lines.some((l) => l.includes('ENOSPC') && l.includes('E_DISK_FULL')));
    expect(acked, 'acknowledged while the disk was full').to.equal(false);
    expect((await proposal(f, id)).finalized).to.have.length(0);

    // Room again: the same coordinator, still running, records the update, acknowledges it and completes the round.
    rmSync(filler, { force: true });
    await acknowledged;
    const done = await poll(async () => {
      const p = await proposal(f, id);
      return p.finalized.length === 1 ? p : undefined;
    });
    expect(done.finalized[0]!.contributors.map((c) => c.account)).to.deep.equal([f.workers[0]!.address]);
  });
});
