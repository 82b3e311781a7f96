// The build's dist/vendor/: the @polkadot packages' ES module faces export what the packages export, and the bundle
// behind them runs through V8's code cache, written by the first process and taken by the next (scripts/build.js).
// TensorFlow.js and ws are required through faces of their own, which dist/ imports instead of the packages.
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { expect } from 'chai';

const vendor = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'vendor');
const face = (dir: string, pkg: string) => join(dir, `${pkg.replace(/^@polkadot\//, '')}.js`);
/** The vendored @polkadot packages: a face each, dist/vendor/<name>.js, beside the loader and yargs' bundle. */
const vendored = (): string[] =>
  readdirSync(vendor)
    .filter(
      (f) => f.endsWith('.js') && !['polkadot.js', 'yargs.js', 'ws.js'].includes(f) && !f.startsWith('tfjs'),
    )
    .map((f) => `@polkadot/${f.slice(0, -'.js'.length)}`);

/** In a fresh Node: the faces' export names, a hash through the WebAssembly, and what became of the code cache. */
function load(dir: string): { codeCache: string; names: Record<string, string[]>; hash: string } {
  const script = `
    const names = {};
    for (const [pkg, file] of ${JSON.stringify(vendored().map((pkg) => [pkg, pathToFileURL(face(dir, pkg)).href]))})
      names[pkg] = Object.keys(await import(file)).sort();
    const { codeCache } = await import(${JSON.stringify(pathToFileURL(join(dir, 'polkadot.js')).href)});
    const crypto = await import(${JSON.stringify(pathToFileURL(face(dir, '@polkadot/util-crypto')).href)});
    if (!(await crypto.cryptoWaitReady())) throw new Error('no WebAssembly');
    console.log(JSON.stringify({ codeCache, names, hash: crypto.blake2AsHex('fedtune') }));`;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  expect(run.status, run.stderr).to.equal(0);
  return JSON.parse(run.stdout);
}

describe('dist/vendor (the build)', function () {
  this.timeout(120_000);
  let dir: string;

  before(function () {
    if (!existsSync(join(vendor, 'polkadot.cjs'))) this.skip(); // `npm test` builds first; bare mocha may not
    dir = mkdtempSync(join(tmpdir(), 'fedtune-vendor-'));
    for (const file of readdirSync(vendor))
      if (file !== 'polkadot.cache') copyFileSync(join(vendor, file), join(dir, file));
  });
  after(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('gives each package its own export names, and writes a code cache that the next process takes', async () => {
    const first = load(dir);
    expect(first.codeCache).to.equal('none');
    expect(vendored()).to.include.members([
      '@polkadot/api',
      '@polkadot/util-crypto',
      '@polkadot/wasm-crypto',
    ]);
    for (const pkg of vendored()) {
      const own = Object.keys(await import(pkg)).filter((name) => name !== 'default');
      expect(first.names[pkg], pkg).to.deep.equal(own.sort());
    }
    const { blake2AsHex } = await import('@polkadot/util-crypto');
    expect(first.hash).to.equal(blake2AsHex('fedtune'));
    expect(existsSync(join(dir, 'polkadot.cache'))).to.equal(true);
    const second = load(dir);
    expect(second.codeCache).to.equal('accepted');
    expect(second).to.deep.include({ names: first.names, hash: first.hash });
  });

  it('compiles as before when V8 refuses the cache, and replaces it', () => {
    writeFileSync(join(dir, 'polkadot.cache'), Buffer.alloc(4096, 7));
    const refused = load(dir);
    expect(refused.codeCache).to.equal('rejected');
    expect(load(dir).codeCache).to.equal('accepted');
    expect(readdirSync(dir).filter((f) => f.startsWith('polkadot.cache.'))).to.deep.equal([]);
  });

  it("loads beside the installed @polkadot packages (chopsticks' own, in `fedtune demo`) without a duplicate-version warning", () => {
    const script = `
      await import(${JSON.stringify(pathToFileURL(face(dir, '@polkadot/api')).href)});
      await import('@polkadot/api');
      await import('@polkadot/util-crypto');`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      cwd: join(vendor, '..', '..'),
    });
    expect(run.status, run.stderr).to.equal(0);
    expect(run.stderr + run.stdout).to.not.match(/multiple versions/);
  });

  it('requires TensorFlow.js and ws through faces that export their names, and dist/ imports only the faces', () => {
    const required = ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm', 'ws'];
    const faceOf = (pkg: string) => pathToFileURL(join(vendor, `${pkg.replace('@tensorflow/', '')}.js`)).href;
    const require = createRequire(import.meta.url);
    const script = `
      const names = {};
      for (const [pkg, face] of ${JSON.stringify(required.map((pkg) => [pkg, faceOf(pkg)]))})
        names[pkg] = Object.keys(await import(face));
      console.log(JSON.stringify(names));`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(run.status, run.stderr).to.equal(0);
    const names = JSON.parse(run.stdout) as Record<string, string[]>;
    for (const pkg of required) {
      const own = Object.keys(require(pkg) as object);
      expect(own.length, pkg).to.be.greaterThan(0);
      expect(names[pkg]!.sort(), pkg).to.deep.equal([...own, 'default'].sort());
    }
    // Every compiled module that loads them goes through a face (the optional tfjs-node packages, imported by a name
    // held in a variable, are not written in the source).
    const dist = join(vendor, '..');
    const sources = readdirSync(dist, { recursive: true, encoding: 'utf8' }).filter(
      (f) => f.endsWith('.js') && !f.startsWith('vendor'),
    );
    const bare = sources.filter((f) =>
      /(from |import ?\(?)"(@tensorflow\/|ws")/.test(readFileSync(join(dist, f), 'utf8')),
    );
    expect(bare).to.deep.equal([]);
    const uses = (face: string) =>
      sources.filter((f) => readFileSync(join(dist, f), 'utf8').includes(`vendor/${face}`));
    expect(uses('tfjs.js')).to.include('model/backend.js');
    expect(uses('ws.js')).to.include.members(['coordinator/server.js', 'worker/connection.js']);
  });
});
