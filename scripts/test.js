// `npm test`: builds dist/ when it is stale (so the `fedtune` processes that tests start run the current sources), then
// runs mocha (configured in .mocharc.json: two files at a time) and passes its exit code through.
// Extra arguments go to mocha, e.g. `npm test -- test/devchain`, `npm test -- --grep reducer`, or
// `npm test -- --no-parallel test/x.test.ts` to run serially.
// With no path given, every test file, the longest first (scripts/test-durations.json): mocha hands files to its two
// workers in the order given, so a long file started last would run alone at the end while the other worker idles.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
// Plain JavaScript run by node, so not through bin/index.ts (TypeScript): the same check bin/fedtune.js makes.
// eslint-disable-next-line fedtune/boundaries
import { isFresh } from '../bin/fresh.js';

// dist/ is built again unless it is newer than the sources, the build script and the lockfile (npm ci has just built
// it through `prepare`, so CI does not build twice).
const root = fileURLToPath(new URL('../', import.meta.url));
if (!isFresh(root, ['scripts', 'package.json', 'package-lock.json'])) {
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
if (!args.some((a) => existsSync(a) || a.includes('*'))) args.push(...longestFirst(testFiles('test')));
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

/**
 * The files by their recorded duration, longest first; files with no record (new ones) keep name order after them.
 * The record is a full run's `out/test-durations.json` (the reporter writes it), copied to scripts/.
 */
function longestFirst(files) {
  const path = new URL('test-durations.json', import.meta.url);
  const seconds = existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : {};
  const known = (f) => (typeof seconds[f] === 'number' ? seconds[f] : -1);
  return files
    .map((f, i) => ({ f, i }))
    .sort((a, b) => known(b.f) - known(a.f) || a.i - b.i)
    .map(({ f }) => f);
}
