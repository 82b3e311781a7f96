// Mocha root hooks (loaded by .mocharc.json's `require`): the CPU time each test file costs, its own process and the
// child processes it started and reaped (fedtune commands, sub-coordinators), so the slow-file table can say which files
// use the machine and which only wait. In a --parallel run root hooks run once per file in the worker that runs it;
// each file appends one line `{"file", "cpuSeconds"}` to out/test-cpu.jsonl, which the summary reporter reads at the end.
// In a serial run all files share one root suite and nothing is written.
'use strict';
const { appendFileSync, mkdirSync, readFileSync } = require('node:fs');
const { join, relative } = require('node:path');

const TICKS_PER_SECOND = 100; // Linux's USER_HZ

/** CPU seconds of this process and its reaped children: /proc/self/stat's utime, stime, cutime, cstime. */
function cpuSeconds() {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    // Fields after the command name (which is in parentheses and may hold spaces): state is field 3, utime field 14.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = fields.slice(11, 15).reduce((sum, f) => sum + Number(f), 0);
    return ticks / TICKS_PER_SECOND;
  } catch {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1e6;
  }
}

let startedAt = 0;

exports.mochaHooks = {
  beforeAll() {
    startedAt = cpuSeconds();
  },
  afterAll() {
    const files = new Set((this.test?.parent?.suites ?? []).map((s) => s.file).filter(Boolean));
    if (files.size !== 1) return;
    const [file] = files;
    const line = {
      file: relative(process.cwd(), file).split('\\').join('/'),
      cpuSeconds: cpuSeconds() - startedAt,
    };
    try {
      mkdirSync(join(process.cwd(), 'out'), { recursive: true });
      appendFileSync(join(process.cwd(), 'out', 'test-cpu.jsonl'), `${JSON.stringify(line)}\n`);
    } catch {
      // a figure for the table only: never fails the run
    }
  },
};
