// The journal is replayed through a bounded read window: records of every size, across window boundaries and larger
// than a window, come back exactly, and a tail torn inside a later window is cut off.
import { mkdtempSync, rmSync, statSync, truncateSync } from 'node:fs';
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
});
