// chopsticks' runtime worker across devnets in one process: the next devnet reuses it, and a process whose last devnet
// closed is held open by nothing (it exits by itself).
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const DEVCHAIN = pathToFileURL(join(import.meta.dirname, '../../devchain/index.ts')).href;
const PINO = pathToFileURL(createRequire(import.meta.url).resolve('pino')).href;

/** Runs in a child: two devnets one after the other, then reports on 'beforeExit', which only an idle loop emits. */
const CHILD = `
import { subscribe } from 'node:diagnostics_channel';
const { pino } = await import(${JSON.stringify(PINO)});
const { startDevnet } = await import(${JSON.stringify(DEVCHAIN)});
const logger = pino({ level: 'silent' });
const first = await startDevnet({ port: 0, logger });
await first.close();
let workers = 0;
subscribe('worker_threads', () => workers++);
const second = await startDevnet({ port: 0, logger });
const head = second.startBlock;
await second.close();
await new Promise((resolve) => setImmediate(resolve));
const held = process.getActiveResourcesInfo();
process.once('beforeExit', () => console.log(JSON.stringify({ workers, head, held })));
`;

describe('devchain: the runtime worker between devnets', function () {
  this.timeout(300_000);

  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fedtune-executor-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is reused by the next devnet, and holds no process open once the last devnet closed', async () => {
    const script = join(dir, 'two-devnets.mjs');
    writeFileSync(script, CHILD);
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        ['--import', 'tsx', script],
        { cwd: join(import.meta.dirname, '../..') },
        (error, out, err) => (error ? reject(new Error(`${error.message}\n${err}`)) : resolve(out)),
      ),
    );
    const report = JSON.parse(stdout.trim().split('\n').pop()!) as {
      workers: number;
      head: number;
      held: string[];
    };
    expect(report.head).to.equal(1);
    expect(report.workers, 'threads started for the second devnet').to.equal(0);
    // A ref'd worker or a task's callback port shows as a MessagePort.
    expect(report.held).to.not.include('MessagePort');
    expect(report.held).to.not.include('Worker');
  });
});
