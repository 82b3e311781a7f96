// `npm test`: runs mocha (configured in .mocharc.json) and passes its exit code through.
// Extra arguments go to mocha, e.g. `npm test -- test/devchain` or `npm test -- --grep reducer`.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const mochaBin = require.resolve('mocha/bin/mocha.js');
const args = process.argv.slice(2);
const result = spawnSync(process.execPath, [mochaBin, ...args], { stdio: 'inherit' });
process.exit(result.status ?? 1);
