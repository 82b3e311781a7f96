// The journal is replayed through a bounded read window (records of every size, across window boundaries and larger
// than a window, come back exactly; a tail torn inside a later window is cut off), and compacts atomically.
import { existsSync, mkdtempSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { READ_CHUNK_BYTES, openJournal } from '../../coordinator/journal.ts';

describe('coordinator: journal read in bounded chunks', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'fedtune-journal-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('replays records across and beyond read-window boundaries, and cuts a torn tail', async () => {
    const path = join(dir, 'journal.bin');
    const journal = await openJournal<{ i: number; pad: Uint8Array }>(path);
    const sizes = [10, 1000, READ_CHUNK_BYTES - 20, 7, 3 * READ_CHUNK_BYTES, 123_456, 5];
    for (let round = 0; round < 3; round++)
      for (const [i, n] of sizes.entries())
        await journal.append({ i: round * 100 + i, pad: new Uint8Array(n).fill((i + round) & 0xff) });
    await journal.close();
    const size = statSync(path).size;
    expect(size).to.be.greaterThan(9 * READ_CHUNK_BYTES);

    const again = await openJournal<{ i: number; pad: Uint8Array }>(path);
    expect(again.recovered.map((r) => r.i)).to.deep.equal(
      [0, 1, 2].flatMap((round) => sizes.map((_, i) => round * 100 + i)),
    );
    again.recovered.forEach((r, k) => {
      const i = k % sizes.length;
      expect(r.pad.length).to.equal(sizes[i]);
      expect(r.pad.every((b) => b === ((i + Math.floor(k / sizes.length)) & 0xff))).to.equal(true);
    });
    expect(again.truncatedBytes).to.equal(0);
    await again.close();

    // A crash mid-way through the last record: it is cut off, everything before it stays.
    truncateSync(path, size - 3);
    const torn = await openJournal<{ i: number }>(path);
    expect(torn.recovered).to.have.length(3 * sizes.length - 1);
    expect(torn.truncatedBytes).to.be.greaterThan(0);
    await torn.close();
  });

  it('compacts to the records given, atomically, with appends made meanwhile landing after them', async () => {
    const path = join(dir, 'journal.bin');
    const journal = await openJournal<{ n: number }>(path);
    for (let n = 0; n < 50; n++) await journal.append({ n });
    const before = statSync(path).size;
    const keep = Array.from({ length: 5 }, (_, i) => ({ n: 45 + i }));
    // Appends racing the compaction: they wait for the swap and are not lost.
    const racing = [journal.append({ n: 100 }), journal.compact(keep), journal.append({ n: 101 })];
    await Promise.all(racing);
    await journal.append({ n: 102 });
    await journal.close();
    expect(statSync(path).size).to.be.lessThan(before);
    const again = await openJournal<{ n: number }>(path);
    const ns = again.recovered.map((r) => r.n);
    // 100 was appended before the compaction was asked for: written, then replaced with the rest of the file. 101, asked
    // for after it, waits for the swap and lands after the records kept.
    expect(ns).to.deep.equal([45, 46, 47, 48, 49, 101, 102]);
    await again.close();
    // A compaction that crashed before its rename leaves its temporary file: it is ignored and removed on open.
    writeFileSync(`${path}.compact`, 'torn');
    const afterCrash = await openJournal<{ n: number }>(path);
    expect(afterCrash.recovered.map((r) => r.n)).to.deep.equal(ns);
    expect(existsSync(`${path}.compact`)).to.equal(false);
    await afterCrash.close();
  });
});
