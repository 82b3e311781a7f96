// The journal keeps every acknowledged record through kill -9 and cuts off a torn tail, never a whole record.
import { spawn } from 'node:child_process';
import { appendFile, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { Packr } from 'msgpackr';
import { SPLICE_PAYLOAD_BYTES, openJournal } from '../../coordinator/journal.ts';

describe('coordinator: journal', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fedtune-journal-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('replays concurrent appends in order after reopening', async () => {
    const path = join(dir, 'j.log');
    const journal = await openJournal<{ i: number; bytes: Uint8Array }>(path);
    await Promise.all(
      Array.from({ length: 200 }, (_, i) => journal.append({ i, bytes: new Uint8Array([i & 0xff, 1, 2]) })),
    );
    await journal.close();
    const again = await openJournal<{ i: number; bytes: Uint8Array }>(path);
    expect(again.recovered.map((r) => r.i)).to.deep.equal(Array.from({ length: 200 }, (_, i) => i));
    expect(Array.from(again.recovered[7]!.bytes)).to.deep.equal([7, 1, 2]);
    expect(again.truncatedBytes).to.equal(0);
    await again.close();
  });

  it("writes a large payload from the caller's bytes, as the same msgpack bytes a whole encoding gives", async () => {
    const path = join(dir, 'j.log');
    type Rec = { t: string; i: number; hash: Uint8Array; payload: Uint8Array };
    const journal = await openJournal<Rec>(path);
    // Below, at and far above the splice threshold; bin8, bin16 and bin32 lengths; a view into a larger buffer.
    const sizes = [10, SPLICE_PAYLOAD_BYTES - 1, SPLICE_PAYLOAD_BYTES, 70_000, 3_000_000];
    const records = sizes.map((n, i) => {
      const backing = new Uint8Array(n + 16);
      for (let j = 0; j < backing.length; j++) backing[j] = (j * 7 + i) & 0xff;
      return { t: 'update', i, hash: new Uint8Array(32).fill(i), payload: backing.subarray(8, 8 + n) };
    });
    await Promise.all(records.map((r) => journal.append(r)));
    await journal.close();
    const bytes = await readFile(path);
    // Each record's framing holds exactly what packr.pack writes for it: readers of older journals read these.
    const packr = new Packr({ useRecords: false, moreTypes: false });
    let offset = 0;
    for (const r of records) {
      const length = bytes.readUInt32LE(offset);
      expect(Buffer.from(bytes.subarray(offset + 8, offset + 8 + length)).equals(packr.pack(r))).to.equal(
        true,
      );
      offset += 8 + length;
    }
    expect(offset).to.equal(bytes.length);
    const again = await openJournal<Rec>(path);
    expect(again.truncatedBytes).to.equal(0);
    expect(again.recovered.map((r) => r.i)).to.deep.equal([0, 1, 2, 3, 4]);
    again.recovered.forEach((r, i) =>
      expect(Buffer.from(r.payload).equals(Buffer.from(records[i]!.payload))).to.equal(true),
    );
    await again.close();
  });

  it('cuts off a torn or corrupted tail and keeps appending after the last whole record', async () => {
    const path = join(dir, 'j.log');
    const journal = await openJournal<{ i: number }>(path);
    for (let i = 0; i < 5; i++) await journal.append({ i });
    await journal.close();
    const size = (await stat(path)).size;
    // Half a header, then a record whose CRC does not match.
    await appendFile(path, Buffer.from([9, 0, 0, 0, 1, 2, 3, 4, 0x81, 0xa1, 0x69, 0x05, 0xff]));
    const reopened = await openJournal<{ i: number }>(path);
    expect(reopened.recovered.map((r) => r.i)).to.deep.equal([0, 1, 2, 3, 4]);
    expect(reopened.truncatedBytes).to.equal(13);
    expect((await stat(path)).size).to.equal(size);
    await reopened.append({ i: 5 });
    await reopened.close();
    const last = await openJournal<{ i: number }>(path);
    expect(last.recovered.map((r) => r.i)).to.deep.equal([0, 1, 2, 3, 4, 5]);
    await last.close();
  });

  it('keeps every acknowledged record when the writing process is killed with SIGKILL', async function () {
    this.timeout(60_000);
    const path = join(dir, 'j.log');
    const writer = fileURLToPath(new URL('./journal-writer.mts', import.meta.url));
    for (let attempt = 0; attempt < 3; attempt++) {
      const child = spawn(process.execPath, ['--import', 'tsx', writer, path], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let acknowledged = -1;
      let text = '';
      await new Promise<void>((resolve) => {
        child.stdout.on('data', (d: Buffer) => {
          text += d.toString();
          const lines = text.split('\n');
          text = lines.pop()!;
          for (const line of lines) acknowledged = Math.max(acknowledged, Number(line));
          // Kill at a different depth each time, mid-stream.
          if (acknowledged >= 40 * (attempt + 1)) {
            child.kill('SIGKILL');
            resolve();
          }
        });
      });
      await new Promise((resolve) => child.once('exit', resolve));
      const journal = await openJournal<{ n: number; payload: Uint8Array }>(path);
      const numbers = journal.recovered.map((r) => r.n);
      expect(numbers.length).to.be.greaterThan(acknowledged);
      expect(new Set(numbers).size).to.equal(numbers.length);
      for (let i = 0; i <= acknowledged; i++) expect(numbers).to.include(i);
      for (const r of journal.recovered) expect(r.payload.every((b) => b === (r.n & 0xff))).to.equal(true);
      await journal.close();
    }
  });
});
