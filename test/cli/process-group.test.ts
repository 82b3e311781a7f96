// runFedtune's time limit kills what the command started too: the demo test's limit once left the demo's trainers
// running after the demo itself was killed. The mechanism is tested with a plain node parent that starts a child.
import { existsSync, readFileSync } from 'node:fs';
import { expect } from 'chai';
import { runProcessGroup } from '../../bin/index.ts';

/** Whether `pid` still runs: a killed process that nobody has reaped yet (a zombie, state Z) does not. */
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // /proc/PID/stat: "pid (comm) state ...": the state follows the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return existsSync(`/proc/${pid}`);
  }
};

describe('runProcessGroup', () => {
  it('kills the process and every process it started when the time limit passes', async () => {
    // The parent starts a child that would run for a minute, prints its pid, and waits.
    const script = `
      const { spawn } = require('node:child_process');
      const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
      console.log(child.pid);
      setTimeout(() => {}, 60000);
    `;
    const result = await runProcessGroup(process.execPath, ['-e', script], {}, 1500);
    expect(result.status).to.equal(null);
    const pid = Number(result.stdout.trim());
    expect(pid).to.be.greaterThan(0);
    // SIGKILL is delivered at once; the kernel may take a moment to reap.
    for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 20));
    expect(alive(pid), `the child ${pid} outlived its parent's time limit`).to.equal(false);
  });

  it('returns the exit status and output of a process that ends in time', async () => {
    const result = await runProcessGroup(
      process.execPath,
      ['-e', 'console.log("hi"); process.exit(3)'],
      {},
      30_000,
    );
    expect(result).to.deep.equal({ status: 3, stdout: 'hi\n', stderr: '' });
  });
});
