// runtimeCacheDir: a devnet keeps the runtime's metadata, slot duration and version in the cache folder, and a process's
// first devnet takes them from there instead of asking the runtime.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startDevnet } from '../../devchain/index.ts';
import { logger } from './helpers.ts';

const DEVCHAIN = pathToFileURL(join(import.meta.dirname, '../../devchain/index.ts')).href;
const EXECUTOR = pathToFileURL(join(import.meta.dirname, '../../devchain/executor.ts')).href;
const CHOPSTICKS = pathToFileURL(join(import.meta.dirname, '../../devchain/chopsticks.ts')).href;
const PINO = pathToFileURL(createRequire(import.meta.url).resolve('pino')).href;

/**
 * Runs in a child: one devnet with the cache folder; prints the runtime calls chopsticks made, how often it asked its
 * executor for the runtime's version (not a runtime call: counted on the executor worker's proxy), and the chain.
 */
const child = (cacheDir: string) => `
const { pino } = await import(${JSON.stringify(PINO)});
const { startDevnet } = await import(${JSON.stringify(DEVCHAIN)});
const { acquireExecutor, releaseExecutor } = await import(${JSON.stringify(EXECUTOR)});
const { loadChopsticks } = await import(${JSON.stringify(CHOPSTICKS)});
const { core } = await loadChopsticks();
await acquireExecutor(core);
const worker = await core.getWorker();
let versions = 0;
const remote = worker.remote;
worker.remote = new Proxy(remote, {
  get: (target, key) => (key === 'getRuntimeVersion' ? (...args) => (versions++, target[key](...args)) : target[key]),
});
const calls = [];
const logger = pino({ level: 'trace' }, {
  write(line) {
    const record = JSON.parse(line);
    if (Array.isArray(record.calls)) calls.push(...record.calls.map((call) => call[0]));
  },
});
const devnet = await startDevnet({ port: 0, logger, runtimeCacheDir: ${JSON.stringify(cacheDir)} });
console.log(JSON.stringify({ calls, versions, genesisHash: devnet.genesisHash, head: devnet.startBlock }));
await devnet.close();
await releaseExecutor(core);
`;

interface Report {
  calls: string[];
  versions: number;
  genesisHash: string;
  head: number;
}

describe('devchain: the runtime cache folder', function () {
  this.timeout(400_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fedtune-runtime-cache-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** chopsticks logs every runtime call at trace level (and every storage read, which costs a few CPU seconds). */
  const run = async (name: string, cacheDir: string): Promise<Report> => {
    const script = join(dir, `${name}.mjs`);
    writeFileSync(script, child(cacheDir));
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        ['--import', 'tsx', script],
        {
          cwd: join(import.meta.dirname, '../..'),
          env: { ...process.env, FEDTUNE_CHOPSTICKS_LOG_LEVEL: 'trace', LOG_LEVEL: 'trace' },
          maxBuffer: 64 << 20,
        },
        (error, out, err) => (error ? reject(new Error(`${error.message}\n${err}`)) : resolve(out)),
      ),
    );
    return JSON.parse(stdout.trim().split('\n').pop()!) as Report;
  };

  it('keeps the metadata, slot and version in the folder, and a later process asks the runtime for none', async () => {
    const cacheDir = join(dir, 'cache');
    // In this process; the runtime may be known here already, but what is not in the folder is written to it.
    const devnet = await startDevnet({ port: 0, logger, runtimeCacheDir: cacheDir });
    await devnet.close();
    const [file, ...others] = readdirSync(cacheDir);
    expect(others).to.deep.equal([]);
    expect(file).to.match(/^[0-9a-f]{64}\.json$/);
    const saved = JSON.parse(readFileSync(join(cacheDir, file!), 'utf8')) as Record<string, unknown>;
    expect(saved.metadata).to.match(/^0x[0-9a-f]+$/);
    expect(saved.slotDuration).to.equal(12_000);
    expect(saved.runtimeVersion).to.include({ specName: 'statemine', specVersion: 900 });

    // Both children at once: one with the folder just written, one with an empty folder, which shows what the first
    // asks the runtime and its executor when nothing is known (and that the counts above see those calls).
    const [later, cold] = await Promise.all([run('later', cacheDir), run('cold', join(dir, 'empty'))]);
    expect(cold.calls).to.include('Metadata_metadata').and.include('AuraApi_slot_duration');
    expect(cold.versions).to.be.greaterThan(0);
    expect(later.calls).to.include('Core_initialize_block').and.include('BlockBuilder_finalize_block');
    expect(later.calls).to.not.include('Metadata_metadata');
    expect(later.calls).to.not.include('AuraApi_slot_duration');
    expect(later.versions).to.equal(0);
    expect(later.genesisHash).to.equal(devnet.genesisHash);
    expect(later.head).to.equal(1);
  });
});
