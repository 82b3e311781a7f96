// Mocha reporter: mocha's own spec output, then the ten slowest test files, then one closing line
// `N passed, N failed[, N skipped]` computed from mocha's runner statistics, which is the line CI reads.
// It works the same in serial and --parallel runs: a file's time is the sum of its tests' and hooks' durations,
// which mocha reports in both (in parallel mode the events of a file arrive together when the file ends).
// Every file's time also goes into out/test-durations.json (kept across runs, each run updating its files): copied to
// scripts/ after a full run, it is the order in which `npm test` starts the files, longest first (scripts/test.js).
// In a --parallel run the table also gives each file's CPU seconds (its process and the processes it started), which
// scripts/test-cpu.cjs appends to out/test-cpu.jsonl as each file ends.
'use strict';
const Mocha = require('mocha');
const { mkdirSync, readFileSync, rmSync, writeFileSync } = require('node:fs');
const { dirname, join, relative } = require('node:path');
const { Spec } = Mocha.reporters;
const { EVENT_RUN_END, EVENT_TEST_END, EVENT_HOOK_END, EVENT_TEST_FAIL } = Mocha.Runner.constants;

class SummaryReporter extends Spec {
  constructor(runner, options) {
    super(runner, options);
    rmSync(CPU_LOG, { force: true });
    /** @type {Map<string, number>} ms per test file */
    const perFile = new Map();
    const add = (runnable) => {
      if (!runnable || typeof runnable.duration !== 'number' || !runnable.file) return;
      perFile.set(runnable.file, (perFile.get(runnable.file) ?? 0) + runnable.duration);
    };
    runner.on(EVENT_TEST_END, add);
    runner.on(EVENT_HOOK_END, add);
    // A failing hook ends without EVENT_HOOK_END; its time still counts.
    runner.on(EVENT_TEST_FAIL, (runnable) => runnable.type === 'hook' && add(runnable));
    runner.once(EVENT_RUN_END, () => {
      const byTime = [...perFile].sort((a, b) => b[1] - a[1]);
      writeDurations(byTime);
      const slowest = byTime.slice(0, 10);
      const cpu = readCpu();
      if (slowest.length > 0) {
        const cpuHeader = cpu.size > 0 ? ' and CPU seconds' : '';
        process.stdout.write(`\nslowest test files (time in tests and hooks${cpuHeader}):\n`);
        for (const [file, ms] of slowest) {
          const name = relative(process.cwd(), file).split('\\').join('/');
          const cpuSeconds = cpu.get(name);
          const cpuColumn =
            cpu.size > 0
              ? `${cpuSeconds === undefined ? '' : cpuSeconds.toFixed(1)}`.padStart(7) + ' cpu '
              : '';
          process.stdout.write(`  ${(ms / 1000).toFixed(1).padStart(7)} s ${cpuColumn} ${name}\n`);
        }
        if (cpu.size > 0) {
          const total = [...cpu.values()].reduce((a, b) => a + b, 0);
          process.stdout.write(`  CPU in test files: ${total.toFixed(0)} s over ${cpu.size} files\n`);
        }
      }
      const { passes, failures, pending } = runner.stats;
      const skipped = pending > 0 ? `, ${pending} skipped` : '';
      process.stdout.write(`${passes} passed, ${failures} failed${skipped}\n`);
    });
  }
}
const CPU_LOG = join(process.cwd(), 'out', 'test-cpu.jsonl');

/** file → CPU seconds from this run's out/test-cpu.jsonl (empty when there is none: a serial run). */
function readCpu() {
  const cpu = new Map();
  let text = '';
  try {
    text = readFileSync(CPU_LOG, 'utf8');
  } catch {
    return cpu;
  }
  for (const line of text.split('\n')) {
    try {
      const { file, cpuSeconds } = JSON.parse(line);
      if (typeof file === 'string' && typeof cpuSeconds === 'number') cpu.set(file, cpuSeconds);
    } catch {
      // a torn or empty line
    }
  }
  return cpu;
}

/**
 * `{ "test/x.test.ts": seconds }`, longest first: the files of this run replace their earlier entries, others stay. A
 * failure to write it never fails the run.
 */
function writeDurations(byTime) {
  const path = join(process.cwd(), 'out', 'test-durations.json');
  try {
    let seconds = {};
    try {
      seconds = JSON.parse(readFileSync(path, 'utf8'));
    } catch {
      // none yet, or unreadable: start afresh
    }
    for (const [file, ms] of byTime)
      seconds[relative(process.cwd(), file).split('\\').join('/')] = Math.round(ms / 100) / 10;
    const sorted = Object.entries(seconds).sort((a, b) => b[1] - a[1]);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, `${JSON.stringify(Object.fromEntries(sorted), null, 2)}\n`);
  } catch (error) {
    process.stderr.write(`could not write out/test-durations.json: ${error.message}\n`);
  }
}

module.exports = SummaryReporter;
