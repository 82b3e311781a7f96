// The coordinator's write-ahead journal: msgpack records, each length-prefixed and CRC-checked, fsync'd before append() resolves.
import { open, mkdir, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';
import { Packr } from 'msgpackr';

export class JournalError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'JournalError';
    this.code = code;
  }
}

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
  close(): Promise<void>;
}

/**
 * Opens (or creates) a journal and replays it. A record torn by a crash at the end of the file (short, or failing its
 * CRC) is cut off; such a record was never acknowledged, because append() resolves only after fsync.
 */
export async function openJournal<T>(path: string): Promise<Journal<T>> {
  await mkdir(dirname(path), { recursive: true });
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

  constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    readonly recovered: readonly T[],
    readonly truncatedBytes: number,
  ) {}

  append(record: T): Promise<void> {
    if (this.closed)
      return Promise.reject(new JournalError('E_JOURNAL_CLOSED', `journal ${this.path} is closed`));
    if (this.failure) return Promise.reject(this.failure);
    const body = packr.pack(record);
    if (body.length > MAX_RECORD_BYTES) {
      return Promise.reject(
        new JournalError(
          'E_JOURNAL_RECORD_TOO_LARGE',
          `record of ${body.length} bytes exceeds ${MAX_RECORD_BYTES}`,
        ),
      );
    }
    const frame = Buffer.allocUnsafe(HEADER + body.length);
    frame.writeUInt32LE(body.length, 0);
    frame.writeUInt32LE(crc32(body), 4);
    body.copy(frame, HEADER);
    return new Promise((resolve, reject) => {
      this.queue.push({ frame, resolve, reject });
      this.flushing ??= this.flush();
    });
  }

  /** Writes everything queued as one write and one fsync, then again while appends arrived meanwhile. */
  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      try {
        await this.handle.writev(batch.map((b) => b.frame));
        await this.handle.datasync();
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
      }
    }
    this.flushing = null;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.flushing;
    await this.handle.close();
  }
}
