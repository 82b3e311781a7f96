// `npm test`: builds dist/ when it is stale (so the `fedtune` processes that tests start run the current sources), then
// runs mocha (configured in .mocharc.json: two files at a time) and passes its exit code through.
// Extra arguments go to mocha, e.g. `npm test -- test/devchain`, `npm test -- --grep reducer`, or
// `npm test -- --no-parallel test/x.test.ts` to run serially.
// With no path given, every test file, the longest first (scripts/test-durations.json): mocha hands files to its two
// workers in the order given, so a long file started last would run alone at the end while the other worker idles.
// While .ci/run is still installing chromium (FEDTUNE_CHROMIUM_INSTALL names the status file it has not yet written),
// the files that drive a browser wait until half the recorded time has gone to other files.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
// Plain JavaScript run by node, so not through bin/index.ts (TypeScript): the same check bin/fedtune.js makes.
// eslint-disable-next-line fedtune/boundaries
import { BUILD_INPUTS, isFresh } from '../bin/fresh.js';

// dist/ is built again unless it is newer than the sources, the build script and the lockfile (npm ci has just built
// it through `prepare`, so CI does not build twice).
const root = fileURLToPath(new URL('../', import.meta.url));
if (!isFresh(root, BUILD_INPUTS)) {
  const build = spawnSync(process.execPath, ['scripts/build.js'], { stdio: 'inherit' });
  if (build.status !== 0) {
    process.stdout.write('the build failed\n0 passed, 1 failed\n');
    process.exit(1);
  }
}
const require = createRequire(import.meta.url);
const mochaBin = require.resolve('mocha/bin/mocha.js');
const args = process.argv.slice(2);
// A path narrows the run (mocha adds config specs to CLI ones, so none is configured).
if (!args.some((a) => existsSync(a) || a.includes('*'))) args.push(...scheduled(testFiles('test')));
const result = spawnSync(process.execPath, [mochaBin, ...args], { stdio: 'inherit' });
process.exit(result.status ?? 1);

/** Every `*.test.ts` under `dir`, as relative paths with `/`, in name order. */
function testFiles(dir) {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.test.ts'))
    .map((e) =>
      join(e.parentPath ?? e.path, e.name)
        .split('\\')
        .join('/'),
    )
    .sort();
}

/** The test files that start a browser. */
const BROWSER_FILES = ['test/explorer/explorer.test.ts'];

/**
 * The files by their recorded duration, longest first; files with no record (new ones) keep name order after them.
 * The record is a full run's `out/test-durations.json` (the reporter writes it), copied to scripts/.
 */
function scheduled(files) {
  const path = new URL('test-durations.json', import.meta.url);
  const seconds = existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : {};
  const known = (f) => (typeof seconds[f] === 'number' ? seconds[f] : -1);
  const order = files
    .map((f, i) => ({ f, i }))
    .sort((a, b) => known(b.f) - known(a.f) || a.i - b.i)
    .map(({ f }) => f);
  const installing =
    process.env.FEDTUNE_CHROMIUM_INSTALL && !existsSync(process.env.FEDTUNE_CHROMIUM_INSTALL);
  if (!installing) return order;
  const rest = order.filter((f) => !BROWSER_FILES.includes(f));
  const half = rest.reduce((sum, f) => sum + Math.max(known(f), 0), 0) / 2;
  let before = 0;
  let at = rest.findIndex((f) => (before += Math.max(known(f), 0)) >= half);
  if (at < 0) at = rest.length - 1;
  return [...rest.slice(0, at + 1), ...order.filter((f) => BROWSER_FILES.includes(f)), ...rest.slice(at + 1)];
}
