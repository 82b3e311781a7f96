// The file-backed chopsticks database: what it reads back after a close, a torn last line, a replaced block.
import { expect } from 'chai';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HexString } from '@polkadot/util/types';
import { FileDatabase } from '../../devchain/index.ts';

const hash = (n: number, fork = 0) => `0x${(n * 16 + fork).toString(16).padStart(64, '0')}` as HexString;
const block = (n: number, fork = 0) => ({
  hash: hash(n, fork),
  number: n,
  header: `0x${'ab'.repeat(n + 1)}` as HexString,
  parentHash: n === 0 ? null : hash(n - 1),
  extrinsics: [`0x0${n}` as HexString],
  storageDiff: { [`0x${'11'.repeat(8)}`]: `0x${n.toString(16).padStart(2, '0')}`, '0x22': null } as Record<
    HexString,
    HexString | null
  >,
});

describe('devchain: FileDatabase', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'fedtune-devchain-db-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads back every saved block after a reopen', async () => {
    const path = join(dir, 'chain.jsonl');
    const db = new FileDatabase(path);
    for (let n = 1; n <= 3; n++) await db.saveBlock(block(n));
    await db.close();
    const again = new FileDatabase(path);
    expect(again.truncatedBytes).to.equal(0);
    expect(await again.blocksCount()).to.equal(3);
    expect(await again.queryHighestBlock()).to.deep.equal(block(3));
    expect(await again.queryBlockByNumber(2)).to.deep.equal(block(2));
    expect(await again.queryBlock(hash(1))).to.deep.equal(block(1));
    expect(await again.queryBlock(hash(9))).to.equal(null);
    await again.close();
  });

  it('cuts off a last line torn by a crash and goes on after it', async () => {
    const path = join(dir, 'chain.jsonl');
    const db = new FileDatabase(path);
    for (let n = 1; n <= 2; n++) await db.saveBlock(block(n));
    await db.close();
    const whole = statSync(path).size;
    const line = `${JSON.stringify({ t: 'block', ...block(3) })}\n`;
    appendFileSync(path, line.slice(0, line.length >> 1));

    const reopened = new FileDatabase(path);
    expect(reopened.truncatedBytes).to.equal(line.length >> 1);
    expect(statSync(path).size).to.equal(whole);
    expect((await reopened.queryHighestBlock())?.number).to.equal(2);
    await reopened.saveBlock(block(3));
    await reopened.close();

    const third = new FileDatabase(path);
    expect(third.truncatedBytes).to.equal(0);
    expect(await third.queryHighestBlock()).to.deep.equal(block(3));
    expect(readFileSync(path, 'utf8').trimEnd().split('\n')).to.have.length(3);
    await third.close();
  });

  it('keeps the latest block of a number and forgets deleted ones', async () => {
    const path = join(dir, 'chain.jsonl');
    const db = new FileDatabase(path);
    await db.saveBlock(block(1));
    await db.saveBlock(block(2));
    await db.saveBlock(block(2, 1));
    await db.deleteBlock(hash(1));
    await db.close();
    const again = new FileDatabase(path);
    expect(await again.queryBlock(hash(2))).to.equal(null);
    expect(await again.queryBlockByNumber(2)).to.deep.equal(block(2, 1));
    expect(await again.queryBlockByNumber(1)).to.equal(null);
    expect(await again.blocksCount()).to.equal(1);
    await again.close();
  });
});
