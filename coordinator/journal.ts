// The coordinator's write-ahead journal: msgpack records, each length-prefixed and CRC-checked, fsync'd before append() resolves.
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

function frameOf(record: unknown): Buffer {
  const body = packr.pack(record);
  if (body.length > MAX_RECORD_BYTES) {
    throw new JournalError(
      'E_JOURNAL_RECORD_TOO_LARGE',
      `record of ${body.length} bytes exceeds ${MAX_RECORD_BYTES}`,
    );
  }
  const frame = Buffer.allocUnsafe(HEADER + body.length);
  frame.writeUInt32LE(body.length, 0);
  frame.writeUInt32LE(crc32(body), 4);
  body.copy(frame, HEADER);
  return frame;
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

class FileJournal<T> implements Journal<T> {
  private queue: { frame: Buffer; resolve: () => void; reject: (error: unknown) => void }[] = [];
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
    let frame: Buffer;
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
      const write = (async () => {
        await this.handle.writev(batch.map((b) => b.frame));
        await this.handle.datasync();
      })();
      this.writing = write.catch(() => undefined);
      try {
        await write;
        for (const b of batch) b.resolve();
      } catch (error) {
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
    const frames = keep.map(frameOf);
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
        await out.writev(frames);
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
