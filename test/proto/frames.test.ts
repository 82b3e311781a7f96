// The wire codec: every message kind round-trips, bodies arrive as aligned zero-copy views, bad bytes get coded errors.
import { expect } from 'chai';
import fc from 'fast-check';
import {
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
  { seq: 3, kind: 'authenticate', authenticate: { signature: new Uint8Array(64).fill(2) } },
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

  it('binds an update signature to round, base, codec, samples, shards and payload', () => {
    const base = updateMessage(update);
    expect(base).to.have.length(32);
    const variants: Partial<UpdateBegin>[] = [
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
        Buffer.from(updateMessage({ ...update, ...change })).equals(Buffer.from(base)),
        JSON.stringify(change),
      ).to.equal(false);
    }
    const challenge = {
      protocolVersion: 1,
      nonce: new Uint8Array(32).fill(1),
      coordinator: '5F',
      network: '0x01',
    };
    expect(
      Buffer.from(authMessage(challenge, '5A')).equals(
        Buffer.from(authMessage({ ...challenge, network: '0x02' }, '5A')),
      ),
    ).to.equal(false);
  });
});
