// A data dir belongs to one chain: devnet.json records which, and another chain's data dir is refused with a code.
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDevnet, type DevnetError } from '../../devchain/index.ts';
import { logger, rejection } from './helpers.ts';

describe('devchain: data dir', function () {
  this.timeout(120_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'fedtune-devchain-dir-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("names its chain in devnet.json and refuses another chain's data dir", async () => {
    const devnet = await startDevnet({ port: 0, logger, dataDir: dir });
    await devnet.close();
    const saved = JSON.parse(readFileSync(join(dir, 'devnet.json'), 'utf8')) as {
      chain: { genesisHash: string };
    };
    expect(saved.chain.genesisHash).to.equal(devnet.genesisHash);

    writeFileSync(join(dir, 'devnet.json'), JSON.stringify({ chain: { fork: 'wss://elsewhere.invalid' } }));
    const error = (await rejection(startDevnet({ port: 0, logger, dataDir: dir }))) as DevnetError;
    expect(error.code).to.equal('E_DEVNET_DATA_DIR_MISMATCH');
    expect(error.message).to.include(dir);
  });
});
