// initBackend called twice at once in a fresh process (the demo runs commands side by side in its process): both
// calls get the wasm backend and it stays active. Without the calls waiting for each other, tfjs made a second wasm
// instance, answered the first caller false, and it fell back to cpu.
import { spawnSync } from 'node:child_process';
import { expect } from 'chai';

const SCRIPT = `
import * as tf from '@tensorflow/tfjs';
import { initBackend } from './model/index.ts';
const results = await Promise.all([initBackend({ backend: 'auto' }), initBackend({ backend: 'auto' })]);
process.stdout.write(JSON.stringify({ names: results.map((r) => r.name), active: tf.getBackend() }));
`;

describe('model: initBackend called twice at once', function () {
  this.timeout(120_000);

  it('gives both callers the wasm backend, which stays active', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', SCRIPT], {
      encoding: 'utf8',
      cwd: new URL('../..', import.meta.url).pathname,
    });
    expect(run.status, run.stderr).to.equal(0);
    expect(JSON.parse(run.stdout)).to.deep.equal({ names: ['wasm', 'wasm'], active: 'wasm' });
    // tfjs-node is installed here without its native binding (its install cannot download libtensorflow): it is not
    // imported, so its kernels are not registered twice (once per package, each a warning) before failing.
    expect(run.stderr).to.not.match(/already registered/);
  });

  it('refuses the tensorflow backend without a native binding, with a code', () => {
    const script = `
import { initBackend } from './model/index.ts';
try { await initBackend({ backend: 'tensorflow' }); process.stdout.write('no error'); }
catch (err) { process.stdout.write(err.code); }
`;
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      cwd: new URL('../..', import.meta.url).pathname,
    });
    expect(run.stdout, run.stderr).to.equal('E_BACKEND_UNAVAILABLE');
    expect(run.stderr).to.not.match(/already registered/);
  });
});
