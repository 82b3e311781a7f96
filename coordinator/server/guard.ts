// Limits that hold before a peer has proved anything: TCP sockets not belonging to an authenticated worker (plain HTTP
// included) are counted in total and per remote address, and each WebSocket message's length is read off the raw
// byte stream as soon as its frame header arrives, so an oversized message is refused before it is buffered.
import type { Socket } from 'node:net';

export interface SocketGuardLimits {
  maxUnauthenticated: number;
  maxUnauthenticatedPerAddress: number;
  /** Extra unauthenticated sockets an address gets per authenticated worker it holds (its checkpoint downloads). */
  unauthenticatedPerWorker: number;
}

/** Counts sockets until they belong to an authenticated worker; refuses new ones over the limits. */
export class SocketGuard {
  private readonly unauthenticated = new Set<Socket>();
  private readonly perAddress = new Map<string, number>();
  private readonly authenticated = new Set<Socket>();
  private readonly workersPerAddress = new Map<string, number>();

  constructor(private readonly limits: SocketGuardLimits) {}

  /** Whether a new socket may stay; if so it is counted until it closes or authenticates. */
  admit(socket: Socket): { ok: true } | { ok: false; message: string } {
    const address = socket.remoteAddress ?? '?';
    const fromAddress = this.perAddress.get(address) ?? 0;
    // Workers behind one address (a NAT, a test machine) download checkpoints over plain HTTP: each proven worker
    // key there makes room for its own downloads.
    const allowed =
      this.limits.maxUnauthenticatedPerAddress +
      this.limits.unauthenticatedPerWorker * (this.workersPerAddress.get(address) ?? 0);
    if (this.unauthenticated.size >= this.limits.maxUnauthenticated) {
      return {
        ok: false,
        message: `${this.unauthenticated.size} connections are waiting to authenticate; retry later`,
      };
    }
    if (fromAddress >= allowed) {
      return {
        ok: false,
        message: `${fromAddress} unauthenticated connections from ${address} already; close some or retry later`,
      };
    }
    this.unauthenticated.add(socket);
    bump(this.perAddress, address, 1);
    socket.once('close', () => {
      this.release(socket);
      if (this.authenticated.delete(socket)) bump(this.workersPerAddress, address, -1);
    });
    return { ok: true };
  }

  /** The socket now carries an authenticated worker: other limits (maxConnections, upload budgets) take over. */
  release(socket: Socket, worker = false): void {
    if (!this.unauthenticated.delete(socket)) return;
    const address = socket.remoteAddress ?? '?';
    bump(this.perAddress, address, -1);
    if (worker && !socket.destroyed) {
      this.authenticated.add(socket);
      bump(this.workersPerAddress, address, 1);
    }
  }

  get size(): number {
    return this.unauthenticated.size;
  }
}

function bump(counts: Map<string, number>, key: string, by: number): void {
  const next = (counts.get(key) ?? 0) + by;
  if (next <= 0) counts.delete(key);
  else counts.set(key, next);
}

/** A complete HTTP response refusing a socket over the limits, written before anything is read from it. */
export function busyResponse(message: string): string {
  const body = JSON.stringify({ error: { code: 'E_BUSY', message } });
  return (
    'HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\n' +
    `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

/**
 * Parses RFC 6455 frame headers out of the bytes a socket receives (masked client frames, fragmented messages,
 * interleaved control frames) and reports the length of the message being received each time a data frame's header
 * completes. It never holds more than one frame header (14 bytes).
 */
export class MessageLengthWatcher {
  private readonly header = new Uint8Array(14);
  private have = 0;
  private need = 2;
  /** Payload bytes of the current frame still to skip. */
  private remaining = 0;
  /** Bytes of the (possibly fragmented) data message received so far. */
  private messageBytes = 0;

  /** `onLength` is told the message's length so far; it returns false to stop watching (the connection is closing). */
  constructor(private readonly onLength: (messageBytes: number) => boolean) {}
  private stopped = false;

  push(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length && !this.stopped) {
      if (this.remaining > 0) {
        const skip = Math.min(this.remaining, chunk.length - i);
        this.remaining -= skip;
        i += skip;
        continue;
      }
      this.header[this.have++] = chunk[i++]!;
      if (this.have === 2) {
        const len7 = this.header[1]! & 0x7f;
        const masked = (this.header[1]! & 0x80) !== 0;
        this.need = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (masked ? 4 : 0);
      }
      if (this.have >= 2 && this.have === this.need) this.frameHeader();
    }
  }

  private frameHeader(): void {
    const h = this.header;
    const view = new DataView(h.buffer);
    const len7 = h[1]! & 0x7f;
    // Lengths past 2^53 cannot be represented and are far past any limit: reported as Infinity.
    const length =
      len7 === 126
        ? view.getUint16(2)
        : len7 === 127
          ? view.getUint32(2) >= 0x200000
            ? Infinity
            : view.getUint32(2) * 2 ** 32 + view.getUint32(6)
          : len7;
    const fin = (h[0]! & 0x80) !== 0;
    const opcode = h[0]! & 0x0f;
    this.have = 0;
    this.need = 2;
    this.remaining = length;
    if (opcode >= 8) return; // control frames (close, ping, pong) are at most 125 bytes and not part of a message
    this.messageBytes += length;
    if (!this.onLength(this.messageBytes)) this.stopped = true;
    if (fin) this.messageBytes = 0;
    if (length === Infinity) this.stopped = true;
  }
}
