// `npm test`: runs mocha (configured in .mocharc.json) and passes its exit code through.
// Extra arguments go to mocha, e.g. `npm test -- test/devchain` or `npm test -- --grep reducer`.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';

const require = createRequire(import.meta.url);
const mochaBin = require.resolve('mocha/bin/mocha.js');
const args = process.argv.slice(2);
// With no path given, every test; a path narrows the run (mocha adds config specs to CLI ones, so none is configured).
if (!args.some((a) => existsSync(a) || a.includes('*'))) args.push('test/**/*.test.ts');
const result = spawnSync(process.execPath, [mochaBin, ...args], { stdio: 'inherit' });
process.exit(result.status ?? 1);
