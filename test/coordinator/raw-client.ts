// A hand-driven WebSocket client for the coordinator server tests: it sends what an honest worker never would.
import { createHash } from 'node:crypto';
import { expect } from 'chai';
import WebSocket from 'ws';
import type { KeyringPair } from '@polkadot/keyring/types';
import {
  PROTOCOL_VERSION,
  authMessage,
  decodeFrame,
  encodeFrame,
  updateMessage,
  type Frame,
  type UpdateBegin,
} from '../../proto/index.ts';

export const BASE = `0x${'11'.repeat(32)}`;
export const NETWORK = '0x01';
/** Alice's address: the coordinator every server in this file names. */
export const COORDINATOR = '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY';

/** A hand-driven client for sending what an honest worker never would. */
export class RawClient {
  private frames: Frame[] = [];
  private waiters: (() => void)[] = [];
  closed = false;
  private seq = 0;
  constructor(
    readonly ws: WebSocket,
    readonly url: string,
  ) {
    ws.on('message', (data: Buffer) => {
      this.frames.push(decodeFrame(data).frame);
      this.waiters.splice(0).forEach((w) => w());
    });
    ws.on('close', () => {
      this.closed = true;
      this.waiters.splice(0).forEach((w) => w());
    });
  }
  static async open(url: string): Promise<RawClient> {
    const ws = new WebSocket(url);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    return new RawClient(ws, url);
  }
  send(frame: Omit<Frame, 'seq'> & { kind: Frame['kind'] }, body?: Uint8Array) {
    this.ws.send(encodeFrame({ ...frame, seq: ++this.seq } as Frame, body));
  }
  async next(kind?: Frame['kind']): Promise<Frame> {
    for (;;) {
      const index = this.frames.findIndex((f) =>
        kind === undefined ? f.kind !== 'heartbeat' : f.kind === kind || f.kind === 'error',
      );
      if (index >= 0) return this.frames.splice(index, 1)[0]!;
      if (this.closed) throw new Error('connection closed');
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }
  async untilClosed() {
    while (!this.closed) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
  async authenticate(pair: KeyringPair) {
    this.send({
      kind: 'hello',
      hello: { protocolVersion: PROTOCOL_VERSION, account: pair.address, client: 'raw' },
    } as Frame);
    const challenge = await this.next('challenge');
    if (challenge.kind !== 'challenge') throw new Error(`expected a challenge, got ${challenge.kind}`);
    this.send({
      kind: 'authenticate',
      authenticate: {
        signature: pair.sign(authMessage(challenge.challenge, pair.address, this.url)),
        endpoint: this.url,
      },
    } as Frame);
    return this.next('welcome');
  }
}

export function expectError(frame: Frame, code: string) {
  expect(frame.kind).to.equal('error');
  if (frame.kind === 'error') expect(frame.error.code, frame.error.message).to.equal(code);
}

export function signedBegin(
  pair: KeyringPair,
  taskId: string,
  payload: Uint8Array,
  overrides: Partial<UpdateBegin> = {},
): UpdateBegin {
  const fields = {
    proposal: 0,
    round: 1,
    base: BASE,
    codec: 'dense',
    payloadBytes: payload.length,
    payloadSha256: new Uint8Array(createHash('sha256').update(payload).digest()),
    samples: 100,
    shards: [0],
    ...overrides,
  };
  const signed = { ...fields, network: NETWORK, coordinator: COORDINATOR };
  return { taskId, ...fields, trainLoss: 1.5, signature: pair.sign(updateMessage(signed)), ...overrides };
}
