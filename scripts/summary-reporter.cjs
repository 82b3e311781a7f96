// Mocha reporter: mocha's own spec output, then the ten slowest test files, then one closing line
// `N passed, N failed[, N skipped]` computed from mocha's runner statistics, which is the line CI reads.
// It works the same in serial and --parallel runs: a file's time is the sum of its tests' and hooks' durations,
// which mocha reports in both (in parallel mode the events of a file arrive together when the file ends).
'use strict';
const Mocha = require('mocha');
const { relative } = require('node:path');
const { Spec } = Mocha.reporters;
const { EVENT_RUN_END, EVENT_TEST_END, EVENT_HOOK_END, EVENT_TEST_FAIL } = Mocha.Runner.constants;

class SummaryReporter extends Spec {
  constructor(runner, options) {
    super(runner, options);
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
      const slowest = [...perFile].sort((a, b) => b[1] - a[1]).slice(0, 10);
      if (slowest.length > 0) {
        process.stdout.write('\nslowest test files (time in tests and hooks):\n');
        for (const [file, ms] of slowest)
          process.stdout.write(
            `  ${(ms / 1000).toFixed(1).padStart(7)} s  ${relative(process.cwd(), file)}\n`,
          );
      }
      const { passes, failures, pending } = runner.stats;
      const skipped = pending > 0 ? `, ${pending} skipped` : '';
      process.stdout.write(`${passes} passed, ${failures} failed${skipped}\n`);
    });
  }
}
module.exports = SummaryReporter;
