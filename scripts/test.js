// `npm test`: builds dist/ (so the `fedtune` processes that tests start run the current sources), then runs mocha
// (configured in .mocharc.json: two files at a time) and passes its exit code through.
// Extra arguments go to mocha, e.g. `npm test -- test/devchain`, `npm test -- --grep reducer`, or
// `npm test -- --no-parallel test/x.test.ts` to run serially.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';

const build = spawnSync(process.execPath, ['scripts/build.js'], { stdio: 'inherit' });
if (build.status !== 0) {
  process.stdout.write('the build failed\n0 passed, 1 failed\n');
  process.exit(1);
}
const require = createRequire(import.meta.url);
const mochaBin = require.resolve('mocha/bin/mocha.js');
const args = process.argv.slice(2);
// With no path given, every test; a path narrows the run (mocha adds config specs to CLI ones, so none is configured).
if (!args.some((a) => existsSync(a) || a.includes('*'))) args.push('test/**/*.test.ts');
const result = spawnSync(process.execPath, [mochaBin, ...args], { stdio: 'inherit' });
process.exit(result.status ?? 1);
