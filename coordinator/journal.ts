// The coordinator's write-ahead journal: msgpack records, each length-prefixed and CRC-checked, fsync'd before append()
// resolves. Appends that arrive while a write is under way share the next write and fsync (group commit), and an
// update's payload is written from the received bytes, never copied into its encoding.
import { open, mkdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';
import { Packr } from 'msgpackr';
import { CodedError } from '../errors/index.ts';

export class JournalError extends CodedError {}

/** Record framing: u32le length of the msgpack bytes | u32le CRC-32 of them | the bytes. */
const HEADER = 8;
/** A record larger than this is refused on write and taken as corruption on read. */
export const MAX_RECORD_BYTES = 1024 * 1024 * 1024;

const packr = new Packr({ useRecords: false, moreTypes: false });

export interface Journal<T> {
  readonly path: string;
  /** The records found when the journal was opened, in order. */
  readonly recovered: readonly T[];
  /** Bytes past the last whole record that were cut off on open (a write torn by a crash). */
  readonly truncatedBytes: number;
  /** Resolves once the record is on disk (fsync'd). Concurrent appends share one write and one fsync. */
  append(record: T): Promise<void>;
  /**
   * Rewrites the journal as exactly `keep` (e.g. the records of rounds not yet committed), atomically: a crash leaves
   * the old file or the new one, never a mix. Records appended before the call are replaced (include in `keep` what
   * must stay); appends made after it wait and land after `keep`.
   */
  compact(keep: readonly T[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * Opens (or creates) a journal and replays it. A record torn by a crash at the end of the file (short, or failing its
 * CRC) is cut off; such a record was never acknowledged, because append() resolves only after fsync.
 */
export async function openJournal<T>(path: string): Promise<Journal<T>> {
  await mkdir(dirname(path), { recursive: true });
  // A compaction that crashed before its rename left only its temporary file: the journal itself is the old one.
  await rm(compactPath(path), { force: true });
  const handle = await open(path, 'a+');
  const { size } = await handle.stat();
  const recovered: T[] = [];
  const reader = chunkedReader(handle, size);
  let offset = 0;
  for (;;) {
    const header = await reader(offset, HEADER);
    if (header === null) break;
    const length = header.readUInt32LE(0);
    const checksum = header.readUInt32LE(4);
    if (length > MAX_RECORD_BYTES) break;
    const body = await reader(offset + HEADER, length);
    if (body === null || crc32(body) !== checksum) break;
    try {
      recovered.push(packr.unpack(body) as T);
    } catch {
      break;
    }
    offset += HEADER + length;
  }
  const truncatedBytes = size - offset;
  if (truncatedBytes > 0) {
    await handle.truncate(offset);
    await handle.sync();
  }
  return new FileJournal<T>(path, handle, recovered, truncatedBytes);
}

const compactPath = (path: string) => `${path}.compact`;

/** A `payload` at least this large is written from the caller's bytes, not copied into the msgpack encoding. */
export const SPLICE_PAYLOAD_BYTES = 4096;

/** msgpack's bin header for n bytes (bin8, bin16 or bin32), as msgpackr writes it. */
function binHeader(n: number): Buffer {
  if (n < 0x100) return Buffer.from([0xc4, n]);
  const h = Buffer.allocUnsafe(n < 0x10000 ? 3 : 5);
  if (n < 0x10000) {
    h[0] = 0xc5;
    h.writeUInt16BE(n, 1);
  } else {
    h[0] = 0xc6;
    h.writeUInt32BE(n, 1);
  }
  return h;
}

/**
 * The msgpack encoding of `record` as buffers to write one after another. A large `payload` field (an update's bytes)
 * is not copied: the rest of the record is packed, its map header counts one entry more, and the key, a bin header
 * and the caller's bytes follow — the same bytes packr.pack(record) gives when `payload` is the last key, so the
 * reader is unchanged.
 */
function encodeParts(record: unknown): Buffer[] {
  const payload = (record as { payload?: unknown } | null)?.payload;
  if (!(payload instanceof Uint8Array) || payload.length < SPLICE_PAYLOAD_BYTES) return [packr.pack(record)];
  const { payload: _payload, ...rest } = record as { payload: Uint8Array };
  const head = packr.pack(rest);
  // An object is a fixmap (0x80 | n) or a map16 (0xde, u16 BE); anything else is packed whole.
  if (head[0]! >= 0x80 && head[0]! < 0x8f) head[0] = head[0]! + 1;
  else if (head[0] === 0xde && head.readUInt16BE(1) < 0xffff) head.writeUInt16BE(head.readUInt16BE(1) + 1, 1);
  else return [packr.pack(record)];
  const bytes = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  return [head, packr.pack('payload'), binHeader(bytes.length), bytes];
}

/** A record's framing and encoding, as buffers for one writev: header (length, CRC-32), then the msgpack parts. */
function frameOf(record: unknown): Buffer[] {
  const parts = encodeParts(record);
  let length = 0;
  let crc = 0;
  for (const part of parts) {
    length += part.length;
    crc = crc32(part, crc);
  }
  if (length > MAX_RECORD_BYTES) {
    throw new JournalError(
      'E_JOURNAL_RECORD_TOO_LARGE',
      `record of ${length} bytes exceeds ${MAX_RECORD_BYTES}`,
    );
  }
  const header = Buffer.allocUnsafe(HEADER);
  header.writeUInt32LE(length, 0);
  header.writeUInt32LE(crc, 4);
  return [header, ...parts];
}

/** Bytes read per chunk on open: the file is never read whole (it may exceed what one Buffer can hold). */
export const READ_CHUNK_BYTES = 1024 * 1024;

/**
 * Reads [from, from + n) of a file of `size` bytes through a window of READ_CHUNK_BYTES (or one record, if larger);
 * null when the file ends first. Each window is a fresh buffer, so views handed out earlier stay valid.
 */
function chunkedReader(handle: FileHandle, size: number) {
  let window = Buffer.alloc(0);
  let start = 0;
  return async (from: number, n: number): Promise<Buffer | null> => {
    if (from + n > size) return null;
    if (from < start || from + n > start + window.length) {
      const want = Math.min(Math.max(n, READ_CHUNK_BYTES), size - from);
      const buffer = Buffer.allocUnsafe(want);
      let filled = 0;
      while (filled < want) {
        const { bytesRead } = await handle.read(buffer, filled, want - filled, from + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      window = buffer.subarray(0, filled);
      start = from;
      if (filled < n) return null;
    }
    return window.subarray(from - start, from - start + n);
  };
}

/** Errors that mean the disk has no room now (it may later), not that the journal is broken. */
const DISK_FULL = new Set(['ENOSPC', 'EDQUOT']);

/** The most buffers one writev takes (IOV_MAX is 1024 on Linux). */
const MAX_IOVECS = 1024;

/** Writes every buffer in order: in slices of at most MAX_IOVECS, and again from where a short write stopped. */
async function writeAll(handle: FileHandle, buffers: Buffer[]): Promise<void> {
  let rest = buffers;
  while (rest.length > 0) {
    const slice = rest.slice(0, MAX_IOVECS);
    const want = slice.reduce((n, b) => n + b.length, 0);
    const { bytesWritten } = await handle.writev(slice);
    if (bytesWritten === want) {
      rest = rest.slice(slice.length);
      continue;
    }
    // A short write: drop what went out, keep the rest of the buffer it stopped in.
    let skip = bytesWritten;
    let i = 0;
    while (skip >= rest[i]!.length) skip -= rest[i++]!.length;
    rest = [rest[i]!.subarray(skip), ...rest.slice(i + 1)];
  }
}

class FileJournal<T> implements Journal<T> {
  private queue: { frame: Buffer[]; resolve: () => void; reject: (error: unknown) => void }[] = [];
  private flushing: Promise<void> | null = null;
  private closed = false;
  /** Set by a failed write: the file may now end in a partial record, so nothing more may be appended after it. */
  private failure: JournalError | null = null;

  /** Set while compact() swaps the file: flushes wait for it. */
  private compacting: Promise<void> | null = null;
  /** The batch being written now: compact() waits for it (and only it) before swapping the file. */
  private writing: Promise<void> | null = null;

  constructor(
    readonly path: string,
    private handle: FileHandle,
    readonly recovered: readonly T[],
    readonly truncatedBytes: number,
  ) {}

  append(record: T): Promise<void> {
    if (this.closed)
      return Promise.reject(new JournalError('E_JOURNAL_CLOSED', `journal ${this.path} is closed`));
    if (this.failure) return Promise.reject(this.failure);
    let frame: Buffer[];
    try {
      frame = frameOf(record);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ frame, resolve, reject });
      this.flushing ??= this.flush();
    });
  }

  /** Writes everything queued as one write and one fsync, then again while appends arrived meanwhile. */
  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      while (this.compacting) await this.compacting;
      const batch = this.queue;
      this.queue = [];
      let before = -1;
      const write = (async () => {
        before = (await this.handle.stat()).size;
        await writeAll(
          this.handle,
          batch.flatMap((b) => b.frame),
        );
        await this.handle.datasync();
      })();
      this.writing = write.catch(() => undefined);
      try {
        await write;
        for (const b of batch) b.resolve();
      } catch (error) {
        // A full disk is not a broken journal: cut off what part of the batch went out, refuse the batch, and take
        // appends again (they succeed once there is room). Nothing of the refused batch was acknowledged.
        if (before >= 0 && DISK_FULL.has((error as NodeJS.ErrnoException).code ?? '')) {
          const truncated = await this.handle
            .truncate(before)
            .then(() => this.handle.datasync())
            .then(
              () => true,
              () => false,
            );
          if (truncated) {
            const full = new JournalError(
              'E_DISK_FULL',
              `journal ${this.path}: ${(error as Error).message}; the update was not recorded (free some space: it is taken again once there is room)`,
              { cause: error },
            );
            for (const b of batch) b.reject(full);
            continue;
          }
        }
        const failure = new JournalError(
          'E_JOURNAL_WRITE',
          `could not write journal ${this.path}: ${(error as Error).message}`,
          {
            cause: error,
          },
        );
        this.failure = failure;
        for (const b of [...batch, ...this.queue]) b.reject(failure);
        this.queue = [];
      } finally {
        this.writing = null;
      }
    }
    this.flushing = null;
  }

  async compact(keep: readonly T[]): Promise<void> {
    if (this.closed) throw new JournalError('E_JOURNAL_CLOSED', `journal ${this.path} is closed`);
    if (this.failure) throw this.failure;
    const frames = keep.flatMap(frameOf);
    // One compaction at a time. From here on (synchronously) appends wait for the swap and land after `keep`; the
    // batch being written now, made of appends from before this call, finishes first and is replaced by `keep`.
    while (this.compacting) await this.compacting;
    let release!: () => void;
    this.compacting = new Promise<void>((resolve) => (release = resolve));
    while (this.writing) await this.writing;
    const temporary = compactPath(this.path);
    let renamed = false;
    try {
      const out = await open(temporary, 'w');
      try {
        await writeAll(out, frames);
        await out.sync();
      } finally {
        await out.close();
      }
      await rename(temporary, this.path);
      renamed = true;
      // The rename itself is made durable by syncing the folder that holds it.
      const folder = await open(dirname(this.path), 'r');
      try {
        await folder.sync();
      } finally {
        await folder.close();
      }
      const previous = this.handle;
      this.handle = await open(this.path, 'a+');
      await previous.close();
    } catch (error) {
      await rm(temporary, { force: true }).catch(() => undefined);
      const failure = new JournalError(
        'E_JOURNAL_WRITE',
        `could not compact journal ${this.path}: ${(error as Error).message}`,
        { cause: error },
      );
      // Past the rename the old handle writes to a file no longer in the folder: nothing more may be appended.
      if (renamed) this.failure = failure;
      throw failure;
    } finally {
      this.compacting = null;
      release();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.compacting;
    await this.flushing;
    await this.handle.close();
  }
}
