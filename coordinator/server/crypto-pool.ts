// Signature checks and payload hashing on worker threads: an sr25519 verification costs milliseconds in util-crypto's
// JavaScript (a fraction of one in WebAssembly, used first), a dense update's SHA-256 a few more; a thousand workers'
// logins and updates would queue behind them on the event loop. Each job goes to the thread with the fewest outstanding; with no threads (or none that started) it runs inline.
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { decodeAddress, signatureVerify } from '@polkadot/util-crypto';
import { isReady, sr25519Verify, waitReady } from '@polkadot/wasm-crypto';
import type { Logger } from 'pino';

/** Payloads smaller than this are hashed inline: the hop to a thread costs more than the hash. */
export const HASH_OFFLOAD_BYTES = 256 * 1024;

export type CryptoJob =
  | { id: number; kind: 'verify'; message: Uint8Array; signature: Uint8Array; account: string }
  | { id: number; kind: 'sha256'; buffer: ArrayBuffer; byteOffset: number; byteLength: number };

export type CryptoResult =
  | { kind: 'ready' }
  | { id: number; kind: 'verify'; valid: boolean }
  | { id: number; kind: 'sha256'; digest: Uint8Array; buffer: ArrayBuffer };

export interface CryptoPool {
  /** Threads that started and take jobs now (0: everything runs inline). */
  readonly threads: number;
  /** Whether `signature` over `message` verifies for `account` (sr25519, ed25519 or ecdsa, as signatureVerify detects). */
  verify(message: Uint8Array, signature: Uint8Array, account: string): Promise<boolean>;
  /**
   * SHA-256 of `bytes`. A large payload that owns its whole ArrayBuffer is lent to a thread without copying: until
   * this resolves the caller must not touch it, and afterwards uses the returned `bytes` (the old view is detached).
   */
  sha256(bytes: Uint8Array): Promise<{ digest: Uint8Array; bytes: Uint8Array }>;
  close(): Promise<void>;
}

/** One thread fewer than the machine has (the event loop keeps one), at least one, at most four. */
export const defaultCryptoThreads = (): number => Math.max(1, Math.min(4, availableParallelism() - 1));

/** True only for a valid sr25519 signature; false for anything else, including what it cannot parse. */
function sr25519Fast(message: Uint8Array, signature: Uint8Array, account: string): boolean {
  try {
    return sr25519Verify(signature, message, decodeAddress(account));
  } catch {
    return false;
  }
}

/**
 * sr25519 (what workers sign with) in WebAssembly once it is loaded: about 15x faster than util-crypto's JavaScript
 * (#18). Whatever it does not accept goes on to signatureVerify, which also takes ed25519, ecdsa and wrapped messages,
 * so the verdicts are signatureVerify's. crypto-worker.js does the same on the threads; a parent checks its cohorts'
 * member signatures with it (parent.ts).
 */
export function verifyInline(message: Uint8Array, signature: Uint8Array, account: string): boolean {
  if (signature.length === 64 && isReady() && sr25519Fast(message, signature, account)) return true;
  try {
    return signatureVerify(message, signature, account).isValid;
  } catch {
    return false; // a signature the verifier cannot even parse proves nothing
  }
}

const hashInline = (bytes: Uint8Array) => ({
  digest: new Uint8Array(createHash('sha256').update(bytes).digest()),
  bytes,
});

interface Pending {
  resolve(result: CryptoResult): void;
  reject(error: Error): void;
  /** Runs the job on the event loop instead, when its thread died before answering (null: it cannot be). */
  inline: (() => void) | null;
}

interface Thread {
  worker: Worker;
  ready: boolean;
  pending: Map<number, Pending>;
}

export function startCryptoPool(options: { threads?: number; logger: Logger }): CryptoPool {
  const { logger } = options;
  const wanted = options.threads ?? defaultCryptoThreads();
  // For the inline checks (no threads, or a thread that stopped); until it is loaded they run in JavaScript.
  waitReady().catch((error: unknown) =>
    logger.warn({ err: error }, 'sr25519 WebAssembly did not load; inline checks stay in JavaScript'),
  );
  const threads: Thread[] = [];
  let nextId = 1;
  let closed = false;
  // Plain JavaScript beside this file, in the sources and in dist/ alike.
  const script = new URL('./crypto-worker.js', import.meta.url);

  const drop = (thread: Thread, why: string) => {
    const at = threads.indexOf(thread);
    if (at < 0) return;
    threads.splice(at, 1);
    if (!closed) logger.warn({ why, left: threads.length }, 'a crypto thread stopped; its jobs run inline');
    for (const p of thread.pending.values()) {
      if (p.inline) p.inline();
      else p.reject(new Error(`the crypto thread stopped (${why}) holding the job's payload`));
    }
    thread.pending.clear();
  };

  for (let i = 0; i < wanted; i++) {
    let worker: Worker;
    try {
      // No flags of the parent's (--input-type, loaders): the thread needs plain Node only.
      worker = new Worker(script, { execArgv: [] });
    } catch (error) {
      logger.warn({ err: error }, 'cannot start a crypto thread; signatures are checked inline');
      break;
    }
    worker.unref();
    const thread: Thread = { worker, ready: false, pending: new Map() };
    threads.push(thread);
    worker.on('message', (result: CryptoResult) => {
      if (result.kind === 'ready') {
        thread.ready = true;
        return;
      }
      const p = thread.pending.get(result.id);
      thread.pending.delete(result.id);
      p?.resolve(result);
    });
    worker.on('error', (error) => drop(thread, error.message));
    worker.on('exit', (code) => drop(thread, `exit ${code}`));
  }

  /** The started thread with the fewest jobs outstanding; null when none has started. */
  const pick = (): Thread | null => {
    let best: Thread | null = null;
    for (const t of threads) if (t.ready && (best === null || t.pending.size < best.pending.size)) best = t;
    return best;
  };

  return {
    get threads() {
      return threads.filter((t) => t.ready).length;
    },
    verify(message, signature, account) {
      const thread = pick();
      if (thread === null) return Promise.resolve(verifyInline(message, signature, account));
      const id = nextId++;
      return new Promise<boolean>((resolve, reject) => {
        thread.pending.set(id, {
          resolve: (r) => resolve(r.kind === 'verify' && r.valid),
          reject,
          inline: () => resolve(verifyInline(message, signature, account)),
        });
        thread.worker.postMessage({ id, kind: 'verify', message, signature, account } satisfies CryptoJob);
      });
    },
    sha256(bytes) {
      const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
      const thread = bytes.length >= HASH_OFFLOAD_BYTES && whole ? pick() : null;
      if (thread === null || !(bytes.buffer instanceof ArrayBuffer))
        return Promise.resolve(hashInline(bytes));
      const id = nextId++;
      const buffer = bytes.buffer;
      return new Promise((resolve, reject) => {
        thread.pending.set(id, {
          resolve: (r) => {
            if (r.kind !== 'sha256') return reject(new Error(`crypto thread answered ${r.kind} to sha256`));
            resolve({ digest: r.digest, bytes: new Uint8Array(r.buffer, 0, r.buffer.byteLength) });
          },
          reject,
          inline: null,
        });
        thread.worker.postMessage(
          { id, kind: 'sha256', buffer, byteOffset: 0, byteLength: buffer.byteLength } satisfies CryptoJob,
          [buffer],
        );
      });
    },
    async close() {
      closed = true;
      await Promise.all(threads.map((t) => t.worker.terminate()));
    },
  };
}
