// runtimeCacheDir: a process's first devnet takes the runtime's metadata and slot duration from the cache folder
// instead of asking the runtime; a cache file that is not one is ignored and written afresh.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const DEVCHAIN = pathToFileURL(join(import.meta.dirname, '../../devchain/index.ts')).href;
const PINO = pathToFileURL(createRequire(import.meta.url).resolve('pino')).href;

/** Runs in a child: one devnet with the cache folder; prints the runtime calls chopsticks made, and the chain. */
const child = (cacheDir: string) => `
const { pino } = await import(${JSON.stringify(PINO)});
const { startDevnet } = await import(${JSON.stringify(DEVCHAIN)});
const calls = [];
const logger = pino({ level: 'trace' }, {
  write(line) {
    const record = JSON.parse(line);
    if (Array.isArray(record.calls)) calls.push(...record.calls.map((call) => call[0]));
  },
});
const devnet = await startDevnet({ port: 0, logger, runtimeCacheDir: ${JSON.stringify(cacheDir)} });
console.log(JSON.stringify({ calls, genesisHash: devnet.genesisHash, head: devnet.startBlock }));
await devnet.close();
`;

interface Report {
  calls: string[];
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

  /** With `trace`, chopsticks logs every runtime call (and every storage read, which costs a few CPU seconds). */
  const run = async (name: string, cacheDir: string, trace = true): Promise<Report> => {
    const script = join(dir, `${name}.mjs`);
    writeFileSync(script, child(cacheDir));
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        ['--import', 'tsx', script],
        {
          cwd: join(import.meta.dirname, '../..'),
          env: {
            ...process.env,
            FEDTUNE_CHOPSTICKS_LOG_LEVEL: trace ? 'trace' : 'warn',
            LOG_LEVEL: trace ? 'trace' : 'warn',
          },
          maxBuffer: 64 << 20,
        },
        (error, out, err) => (error ? reject(new Error(`${error.message}\n${err}`)) : resolve(out)),
      ),
    );
    return JSON.parse(stdout.trim().split('\n').pop()!) as Report;
  };

  it('asks the runtime once for its metadata and slot (a torn file is none); a later process reads them', async () => {
    const cacheDir = join(dir, 'cache');
    // An empty folder: the runtime is asked (untraced here; the third run shows what tracing sees).
    const first = await run('first', cacheDir, false);
    const [file, ...others] = readdirSync(cacheDir);
    expect(others).to.deep.equal([]);
    expect(file).to.match(/^[0-9a-f]{64}\.json$/);
    const path = join(cacheDir, file!);
    const saved = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    expect(saved.metadata).to.match(/^0x[0-9a-f]+$/);
    expect(saved.slotDuration).to.equal(12_000);

    // A torn file is no cache: the runtime is asked again, and the file written whole.
    writeFileSync(path, readFileSync(path, 'utf8').slice(0, 1000));
    await run('second', cacheDir, false);
    expect(JSON.parse(readFileSync(path, 'utf8'))).to.deep.equal(saved);

    const third = await run('third', cacheDir);
    expect(third.calls).to.include('Core_initialize_block').and.include('BlockBuilder_finalize_block');
    expect(third.calls).to.not.include('Metadata_metadata');
    expect(third.calls).to.not.include('AuraApi_slot_duration');
    expect(third.genesisHash).to.equal(first.genesisHash);
    expect(third.head).to.equal(1);
  });
});
