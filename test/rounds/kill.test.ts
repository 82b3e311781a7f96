// `fedtune coordinator` as a real process, killed with SIGKILL after acknowledging an update and restarted on the same
// data dir and port: the round is committed with that update, once.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { expect } from 'chai';
import type { Task } from '../../proto/index.ts';
import { connectWorker } from '../../worker/connection.ts';
import { runWorker, type RunningWorker } from '../../worker/runner.ts';
import { BIN } from '../run-cli.ts';
import { approveProposal, logger, proposal, setUp, type Fixture, until } from './helpers.ts';

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe('fedtune coordinator: killed with SIGKILL after an acknowledgement', function () {
  this.timeout(300_000);
  let f: Fixture;
  let child: ChildProcess | null = null;
  let bob: RunningWorker | null = null;
  let charlie: ReturnType<typeof connectWorker> | null = null;

  before(async () => {
    f = await setUp('kill');
  });
  after(async () => {
    child?.kill('SIGKILL');
    await bob?.close();
    await charlie?.close();
    await f?.close();
  });

  const startProcess = (port: number) =>
    new Promise<ChildProcess>((resolve, reject) => {
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
          '32',
          '--json',
        ],
        {
          env: {
            ...process.env,
            FEDTUNE_CHAIN: f.devnet.url,
            FEDTUNE_NETWORK: f.network,
            FEDTUNE_LOG_LEVEL: 'warn',
          },
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      createInterface({ input: proc.stdout! }).on('line', (line) => {
        if ((JSON.parse(line) as { type: string }).type === 'ready') resolve(proc);
      });
      proc.once('exit', (code) => reject(new Error(`coordinator exited ${code}`)));
    });

  it('resumes the round from its journal and commits the acknowledged update', async () => {
    const port = await freePort();
    child = await startProcess(port);
    const url = `ws://127.0.0.1:${port}`;
    bob = runWorker({
      url,
      signer: f.workers[0]!,
      cacheDir: join(f.dir, 'bob'),
      logger,
      reconnect: { minMs: 100, maxMs: 500 },
    });
    const tasks: Task[] = [];
    // Charlie takes his task and stays silent, so the round cannot close before the kill.
    charlie = connectWorker({
      url,
      signer: f.workers[1]!,
      logger,
      onTask: (t) => tasks.push(t),
      reconnect: { minMs: 100, maxMs: 500 },
    });
    await Promise.all([bob.ready, charlie.ready]);
    const id = await approveProposal(f, { minWorkers: 1, roundDeadline: 120 });
    const receipt = await until(() => bob!.receipts().find((r) => r.proposal === id));

    child.kill('SIGKILL');
    await new Promise((r) => child!.once('exit', r));
    expect((await proposal(f, id)).finalized, 'nothing committed before the kill').to.have.length(0);

    tasks.length = 0;
    child = await startProcess(port);
    const task = await until(() => tasks.find((t) => t.proposal === id));
    charlie.send({
      kind: 'taskFailed',
      taskFailed: { taskId: task.taskId, code: 'E_TEST', message: 'declined' },
    });
    const result = await until(() => bob!.receipts().find((r) => r.proposal === id && r.result)?.result);

    const p = await proposal(f, id);
    expect(p.status).to.equal('completed');
    expect(p.finalized).to.have.length(1);
    expect(p.finalized[0]!.contributors.map((c) => c.account)).to.deep.equal([f.workers[0]!.address]);
    expect(result.verified).to.equal(true);
    expect(result.updatesRoot).to.equal(p.finalized[0]!.updatesRoot);
    expect(bob.receipts().find((r) => r.proposal === id)!.updateHash).to.equal(receipt.updateHash);
  });
});
