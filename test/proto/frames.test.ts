// The wire codec: every message kind round-trips, bodies arrive as aligned zero-copy views, bad bytes get coded errors.
import { expect } from 'chai';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import {
  AUTH_DOMAIN,
  UPDATE_DOMAIN,
  WireError,
  authMessage,
  decodeFrame,
  encodeFrame,
  updateMessage,
  type Frame,
  type UpdateBegin,
} from '../../proto/index.ts';

const bytes = (...values: number[]) => new Uint8Array(values);

const update: UpdateBegin = {
  taskId: 't-1',
  proposal: 3,
  round: 2,
  base: `0x${'ab'.repeat(32)}`,
  codec: 'topk-int8',
  payloadBytes: 123456,
  payloadSha256: new Uint8Array(32).fill(7),
  samples: 4096,
  shards: [1, 5, 9],
  trainLoss: 2.25,
  signature: new Uint8Array(64).fill(9),
};

const examples: Frame[] = [
  { seq: 1, kind: 'hello', hello: { protocolVersion: 1, account: '5Grw', client: 'fedtune/0.1.0' } },
  {
    seq: 2,
    kind: 'challenge',
    challenge: { protocolVersion: 1, nonce: new Uint8Array(32).fill(1), coordinator: '5F', network: '0x01' },
  },
  {
    seq: 3,
    kind: 'authenticate',
    authenticate: { signature: new Uint8Array(64).fill(2), endpoint: 'ws://127.0.0.1:9944' },
  },
  {
    seq: 4,
    kind: 'welcome',
    welcome: { session: 's', maxFrameBytes: 1 << 22, maxUpdateBytes: 1 << 28, heartbeatMs: 5000 },
  },
  {
    seq: 5,
    kind: 'task',
    task: {
      taskId: 't-1',
      proposal: 3,
      round: 2,
      base: { id: `0x${'cd'.repeat(32)}`, bytes: 5_000_000_000, url: 'http://127.0.0.1:7300' },
      shards: [0, 4],
      datasetRoot: `0x${'ef'.repeat(32)}`,
      modelJson: '{"preset":"tiny"}',
      hyperparamsJson: '{"steps":10}',
      codecJson: '{"codec":"dense"}',
      deadlineMs: 1_800_000_000_000,
    },
  },
  { seq: 6, kind: 'updateBegin', updateBegin: update },
  { seq: 7, kind: 'updateChunk', updateChunk: { taskId: 't-1', offset: 4_194_304 } },
  { seq: 8, kind: 'updateEnd', updateEnd: { taskId: 't-1' } },
  {
    seq: 9,
    kind: 'ack',
    ack: { taskId: 't-1', updateHash: new Uint8Array(32).fill(3), proposal: 3, round: 2 },
  },
  {
    seq: 10,
    kind: 'roundResult',
    roundResult: {
      proposal: 3,
      round: 2,
      checkpointId: '0x00',
      updatesRoot: new Uint8Array(32).fill(4),
      proof: [new Uint8Array(32).fill(5), new Uint8Array(32).fill(6)],
      leafIndex: 1,
      leafCount: 3,
      blockHash: '0x11',
    },
  },
  { seq: 11, kind: 'heartbeat', heartbeat: { timeMs: 1_700_000_000_123 } },
  { seq: 12, kind: 'error', error: { code: 'E_BAD_SIGNATURE', message: 'no', refSeq: 6, fatal: false } },
  { seq: 13, kind: 'uploadStatus', uploadStatus: { taskId: 't-1', receivedBytes: 1024 } },
  {
    seq: 14,
    kind: 'taskFailed',
    taskFailed: { taskId: 't-1', code: 'E_SHARD_MISMATCH', message: 'shard 4' },
  },
];

function expectWireError(fn: () => unknown, code: string) {
  try {
    fn();
  } catch (error) {
    expect(error).to.be.instanceOf(WireError);
    expect((error as WireError).code).to.equal(code);
    return;
  }
  expect.fail(`expected WireError ${code}`);
}

describe('proto: frames', () => {
  it('round-trips every message kind with its fields', () => {
    for (const frame of examples) {
      const { frame: decoded, body } = decodeFrame(encodeFrame(frame));
      expect(decoded, frame.kind).to.deep.equal(frame);
      expect(body.length).to.equal(0);
    }
  });

  it('carries a body after the header at a 4-byte aligned offset, as a view of the message', () => {
    const floats = Float32Array.from({ length: 1000 }, (_, i) => i * 0.5 - 3);
    const message = encodeFrame(
      { seq: 1, kind: 'updateChunk', updateChunk: { taskId: 'abc', offset: 0 } },
      new Uint8Array(floats.buffer),
    );
    const { body } = decodeFrame(message);
    expect(body.buffer).to.equal(message.buffer);
    expect(body.byteOffset % 4).to.equal(0);
    expect(Array.from(new Float32Array(body.buffer, body.byteOffset, body.length / 4))).to.deep.equal(
      Array.from(floats),
    );
  });

  it('refuses oversized, truncated and malformed frames with codes', () => {
    const good = encodeFrame(examples[0]!);
    expectWireError(() => decodeFrame(new Uint8Array(1025), 1024), 'E_FRAME_TOO_LARGE');
    expectWireError(() => decodeFrame(bytes(1, 0)), 'E_FRAME_MALFORMED');
    expectWireError(() => decodeFrame(good.subarray(0, good.length - 3)), 'E_FRAME_MALFORMED');
    expectWireError(() => decodeFrame(bytes(0xff, 0xff, 0xff, 0x7f, 1, 2)), 'E_FRAME_MALFORMED');
    expectWireError(() => decodeFrame(bytes(0, 0, 0, 0)), 'E_FRAME_MALFORMED'); // no message in the frame
    // A task id whose header leaves padding before the body.
    const badPadding = ['x', 'xy', 'xyz', 'wxyz']
      .map((taskId) => encodeFrame({ seq: 1, kind: 'updateEnd', updateEnd: { taskId } }, bytes(1, 2, 3, 4)))
      .find((m) => new DataView(m.buffer).getUint32(0, true) % 4 !== 0)!;
    const headerLength = new DataView(badPadding.buffer).getUint32(0, true);
    badPadding[4 + headerLength] = 9;
    expectWireError(() => decodeFrame(badPadding), 'E_FRAME_MALFORMED');
  });

  it('answers any random bytes with a WireError or a frame, never another exception', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (random) => {
        try {
          decodeFrame(random);
        } catch (error) {
          if (!(error instanceof WireError)) throw error;
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('binds an update signature to network, coordinator, round, base, codec, samples, shards and payload', () => {
    const signed = { ...update, network: '0x01', coordinator: '5F' };
    const base = updateMessage(signed);
    expect(base).to.have.length(32);
    const variants: Partial<typeof signed>[] = [
      { network: '0x02' },
      { coordinator: '5G' },
      { round: 3 },
      { proposal: 4 },
      { base: `0x${'ac'.repeat(32)}` },
      { codec: 'dense' },
      { samples: 4097 },
      { shards: [1, 5] },
      { payloadBytes: 1 },
      { payloadSha256: new Uint8Array(32).fill(8) },
    ];
    for (const change of variants) {
      expect(
        Buffer.from(updateMessage({ ...signed, ...change })).equals(Buffer.from(base)),
        JSON.stringify(change),
      ).to.equal(false);
    }
  });

  it('signs the byte layouts docs/wire.md documents, each field length-prefixed after a domain tag', () => {
    const challenge = {
      protocolVersion: 2,
      nonce: new Uint8Array(32).fill(1),
      coordinator: '5F',
      network: '0x01',
    };
    const field = (b: Uint8Array | string) => {
      const bytes = typeof b === 'string' ? Buffer.from(b, 'utf8') : Buffer.from(b);
      const length = Buffer.alloc(4);
      length.writeUInt32LE(bytes.length);
      return Buffer.concat([length, bytes]);
    };
    const auth = Buffer.concat(
      [AUTH_DOMAIN, '0x01', '5F', '5A', 'ws://h:1', challenge.nonce].map((f) => field(f)),
    );
    expect(AUTH_DOMAIN).to.equal('fedtune/auth/v2');
    expect(Buffer.from(authMessage(challenge, '5A', 'ws://h:1')).equals(auth)).to.equal(true);
    // Another endpoint (a relay), network or coordinator: another message.
    for (const other of [
      authMessage(challenge, '5A', 'ws://relay:1'),
      authMessage({ ...challenge, network: '0x02' }, '5A', 'ws://h:1'),
      authMessage({ ...challenge, coordinator: '5G' }, '5A', 'ws://h:1'),
    ])
      expect(Buffer.from(other).equals(auth)).to.equal(false);

    const numbers = Buffer.alloc(24);
    numbers.writeUInt32LE(update.proposal, 0);
    numbers.writeUInt32LE(update.round, 4);
    numbers.writeBigUInt64LE(BigInt(update.samples), 8);
    numbers.writeBigUInt64LE(BigInt(update.payloadBytes), 16);
    const shards = Buffer.alloc(4 * update.shards.length);
    update.shards.forEach((s, i) => shards.writeUInt32LE(s, 4 * i));
    const fields = Buffer.concat(
      [UPDATE_DOMAIN, '0x01', '5F', numbers, update.base, update.codec, shards, update.payloadSha256].map(
        (f) => field(f),
      ),
    );
    expect(UPDATE_DOMAIN).to.equal('fedtune/update/v2');
    expect(
      Buffer.from(updateMessage({ ...update, network: '0x01', coordinator: '5F' })).equals(
        createHash('sha256').update(fields).digest(),
      ),
    ).to.equal(true);
  });

  it('bounds every header field before anything parses it: E_FIELD_TOO_LONG names the field', () => {
    const cases: [Frame, string][] = [
      [
        { seq: 1, kind: 'hello', hello: { protocolVersion: 2, account: '5'.repeat(60_000), client: 'x' } },
        'hello.account',
      ],
      [
        { seq: 1, kind: 'hello', hello: { protocolVersion: 2, account: '5F', client: 'c'.repeat(257) } },
        'hello.client',
      ],
      [
        {
          seq: 1,
          kind: 'authenticate',
          authenticate: { signature: new Uint8Array(129), endpoint: 'ws://h' },
        },
        'authenticate.signature',
      ],
      [
        {
          seq: 1,
          kind: 'roundResult',
          roundResult: {
            proposal: 0,
            round: 1,
            checkpointId: '0x',
            updatesRoot: new Uint8Array(32),
            proof: Array.from({ length: 65 }, () => new Uint8Array(32)),
            leafIndex: 0,
            leafCount: 1,
            blockHash: '0x',
          },
        },
        'roundResult.proof',
      ],
    ];
    for (const [frame, field] of cases) {
      let caught: unknown;
      try {
        decodeFrame(encodeFrame(frame), 1024 * 1024);
      } catch (error) {
        caught = error;
      }
      expect(caught, field).to.be.instanceOf(WireError);
      expect((caught as WireError).code).to.equal('E_FIELD_TOO_LONG');
      expect((caught as WireError).message).to.contain(field);
    }
    // The largest legitimate values pass: a 0x-hex account, a 65-byte ecdsa signature.
    const hexAccount = `0x${'ab'.repeat(32)}`;
    const ok = decodeFrame(
      encodeFrame({ seq: 1, kind: 'hello', hello: { protocolVersion: 2, account: hexAccount, client: 'x' } }),
    );
    expect(ok.frame.kind).to.equal('hello');
  });
});
