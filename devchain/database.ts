// chopsticks' Database over one append-only file of JSON lines, each block fsync'd: no native module, survives kill -9.
import {
  openSync,
  readSync,
  writeSync,
  fdatasyncSync,
  closeSync,
  ftruncateSync,
  fstatSync,
  mkdirSync,
} from 'node:fs';
import { dirname } from 'node:path';
import type { BlockEntry, Database, KeyValueEntry } from '@acala-network/chopsticks-core';
import type { HexString } from '@polkadot/util/types';

type LogRecord =
  | ({ t: 'block' } & BlockEntry)
  | { t: 'delete'; hash: HexString }
  | { t: 'storage'; blockHash: string; key: string; value: string | null };

/** Where a block's line lies in the file: blocks are read back from disk when asked for, not kept in memory. */
interface BlockRef {
  hash: HexString;
  number: number;
  offset: number;
  length: number;
}

export interface FileDatabaseOptions {
  /**
   * Keep chopsticks' cache of a forked chain's remote storage (worth it with --fork: it spares refetching). Without a
   * remote (genesis mode) the cache would only copy the chain spec, runtime code included, into the log. Default true.
   */
  cacheStorage?: boolean;
}

/**
 * The file is the durable log; memory holds an index of it. A line torn by a crash is always the last one, and never
 * acknowledged (a block is fsync'd before it is announced), so it is cut off when the file opens.
 */
export class FileDatabase implements Database {
  private readonly blocks = new Map<string, BlockRef>();
  private readonly byNumber = new Map<number, string>();
  private readonly storage = new Map<string, KeyValueEntry>();
  private readonly cacheStorage: boolean;
  private fd: number;
  private size: number;
  /** Bytes cut off the end of the file when it was opened. */
  readonly truncatedBytes: number;

  constructor(
    readonly path: string,
    options: FileDatabaseOptions = {},
  ) {
    this.cacheStorage = options.cacheStorage ?? true;
    mkdirSync(dirname(path), { recursive: true });
    this.fd = openSync(path, 'a+');
    const text = Buffer.alloc(fstatSync(this.fd).size);
    if (text.length > 0) readSync(this.fd, text, 0, text.length, 0);
    let valid = 0;
    for (let start = 0; ;) {
      const end = text.indexOf(10, start);
      if (end < 0) break;
      let record: LogRecord;
      try {
        record = JSON.parse(text.subarray(start, end).toString('utf8')) as LogRecord;
      } catch {
        break;
      }
      this.apply(record, start, end + 1 - start);
      start = end + 1;
      valid = start;
    }
    this.truncatedBytes = text.length - valid;
    this.size = valid;
    if (this.truncatedBytes > 0) {
      ftruncateSync(this.fd, valid);
      fdatasyncSync(this.fd);
    }
  }

  private apply(record: LogRecord, offset: number, length: number): void {
    switch (record.t) {
      case 'block': {
        const previous = this.byNumber.get(record.number);
        if (previous !== undefined && previous !== record.hash) this.blocks.delete(previous);
        this.blocks.set(record.hash, { hash: record.hash, number: record.number, offset, length });
        this.byNumber.set(record.number, record.hash);
        break;
      }
      case 'delete': {
        const block = this.blocks.get(record.hash);
        if (block) {
          this.blocks.delete(record.hash);
          if (this.byNumber.get(block.number) === record.hash) this.byNumber.delete(block.number);
        }
        break;
      }
      case 'storage':
        if (this.cacheStorage)
          this.storage.set(`${record.blockHash}|${record.key}`, {
            blockHash: record.blockHash,
            key: record.key,
            value: record.value,
          });
        break;
    }
  }

  private append(record: LogRecord, durable: boolean): void {
    const line = Buffer.from(`${JSON.stringify(record)}\n`, 'utf8');
    // 'a+' appends whatever the position; a short write would leave a torn line that the next open cuts off.
    for (let written = 0; written < line.length;)
      written += writeSync(this.fd, line, written, line.length - written);
    if (durable) fdatasyncSync(this.fd);
    this.apply(record, this.size, line.length);
    this.size += line.length;
  }

  private read(ref: BlockRef | undefined): BlockEntry | null {
    if (!ref) return null;
    const line = Buffer.alloc(ref.length);
    readSync(this.fd, line, 0, ref.length, ref.offset);
    const { t: _t, ...block } = JSON.parse(line.toString('utf8')) as { t: 'block' } & BlockEntry;
    return block;
  }

  close = async (): Promise<void> => {
    if (this.fd >= 0) {
      closeSync(this.fd);
      this.fd = -1;
    }
  };

  saveBlock = async (block: BlockEntry): Promise<void> => {
    this.append({ t: 'block', ...block }, true);
  };

  queryBlock = async (hash: HexString): Promise<BlockEntry | null> => this.read(this.blocks.get(hash));

  queryBlockByNumber = async (number: number): Promise<BlockEntry | null> => {
    const hash = this.byNumber.get(number);
    return hash === undefined ? null : this.read(this.blocks.get(hash));
  };

  queryHighestBlock = async (): Promise<BlockEntry | null> => {
    let highest: BlockRef | undefined;
    for (const block of this.blocks.values())
      if (highest === undefined || block.number > highest.number) highest = block;
    return this.read(highest);
  };

  deleteBlock = async (hash: HexString): Promise<void> => {
    if (this.blocks.has(hash)) this.append({ t: 'delete', hash }, true);
  };

  blocksCount = async (): Promise<number> => this.blocks.size;

  // Storage entries are chopsticks' cache of a forked chain's remote state: refetchable, so not fsync'd.
  saveStorage = async (blockHash: HexString, key: HexString, value: HexString | null): Promise<void> => {
    if (this.cacheStorage) this.append({ t: 'storage', blockHash, key, value }, false);
  };

  queryStorage = async (blockHash: HexString, key: HexString): Promise<KeyValueEntry | null> =>
    this.storage.get(`${blockHash}|${key}`) ?? null;
}
