// chopsticks' Database over one append-only file of JSON lines, each block fsync'd: no native module, survives kill -9.
import {
  openSync,
  readFileSync,
  writeSync,
  fdatasyncSync,
  closeSync,
  ftruncateSync,
  existsSync,
  mkdirSync,
} from 'node:fs';
import { dirname } from 'node:path';
import type { BlockEntry, Database, KeyValueEntry } from '@acala-network/chopsticks-core';
import type { HexString } from '@polkadot/util/types';

type LogRecord =
  | ({ t: 'block' } & BlockEntry)
  | { t: 'delete'; hash: HexString }
  | { t: 'storage'; blockHash: string; key: string; value: string | null };

/**
 * The whole chain is small enough to hold in memory; the file is its durable log. A line torn by a crash (the last
 * one, never acknowledged because the block is written before the next one is built) is cut off when the file opens.
 */
export class FileDatabase implements Database {
  private readonly blocks = new Map<string, BlockEntry>();
  private readonly byNumber = new Map<number, string>();
  private readonly storage = new Map<string, KeyValueEntry>();
  private fd: number;
  /** Bytes cut off the end of the file when it was opened. */
  readonly truncatedBytes: number;

  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
    let valid = 0;
    if (existsSync(path)) {
      const text = readFileSync(path);
      let start = 0;
      for (;;) {
        const end = text.indexOf(10, start);
        if (end < 0) break;
        let record: LogRecord;
        try {
          record = JSON.parse(text.subarray(start, end).toString('utf8')) as LogRecord;
        } catch {
          break;
        }
        this.apply(record);
        start = end + 1;
        valid = start;
      }
      this.truncatedBytes = text.length - valid;
    } else {
      this.truncatedBytes = 0;
    }
    this.fd = openSync(path, 'a+');
    if (this.truncatedBytes > 0) {
      ftruncateSync(this.fd, valid);
      fdatasyncSync(this.fd);
    }
  }

  private apply(record: LogRecord): void {
    switch (record.t) {
      case 'block': {
        const { t: _t, ...block } = record;
        const previous = this.byNumber.get(block.number);
        if (previous !== undefined && previous !== block.hash) this.blocks.delete(previous);
        this.blocks.set(block.hash, block);
        this.byNumber.set(block.number, block.hash);
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
        this.storage.set(`${record.blockHash}|${record.key}`, {
          blockHash: record.blockHash,
          key: record.key,
          value: record.value,
        });
        break;
    }
  }

  private append(record: LogRecord, durable: boolean): void {
    writeSync(this.fd, `${JSON.stringify(record)}\n`);
    if (durable) fdatasyncSync(this.fd);
    this.apply(record);
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

  queryBlock = async (hash: HexString): Promise<BlockEntry | null> => this.blocks.get(hash) ?? null;

  queryBlockByNumber = async (number: number): Promise<BlockEntry | null> => {
    const hash = this.byNumber.get(number);
    return hash === undefined ? null : (this.blocks.get(hash) ?? null);
  };

  queryHighestBlock = async (): Promise<BlockEntry | null> => {
    let highest: BlockEntry | null = null;
    for (const block of this.blocks.values())
      if (highest === null || block.number > highest.number) highest = block;
    return highest;
  };

  deleteBlock = async (hash: HexString): Promise<void> => {
    if (this.blocks.has(hash)) this.append({ t: 'delete', hash }, true);
  };

  blocksCount = async (): Promise<number> => this.blocks.size;

  // Storage entries are chopsticks' cache of a forked chain's remote state: refetchable, so not fsync'd.
  saveStorage = async (blockHash: HexString, key: HexString, value: HexString | null): Promise<void> => {
    this.append({ t: 'storage', blockHash, key, value }, false);
  };

  queryStorage = async (blockHash: HexString, key: HexString): Promise<KeyValueEntry | null> =>
    this.storage.get(`${blockHash}|${key}`) ?? null;
}
