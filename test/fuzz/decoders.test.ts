// Fuzzing (fast-check, fixed seed, small in CI) of every decoder that reads bytes a stranger controls: the wire frame,
// the update payload, the remark payload, safetensors and the two manifest parsers. Each input is either decoded or
// refused with the decoder's own coded error; nothing crashes, hangs, or allocates past the limits it states.
import { createHash } from 'node:crypto';
import { expect } from 'chai';
import fc from 'fast-check';
import {
  AggregationError,
  CODECS,
  MAX_TENSORS,
  decodeUpdate,
  encodeUpdate,
} from '../../aggregation/index.ts';
import {
  CheckpointError,
  buildManifest as buildCheckpointManifest,
  encodeManifest,
  parseManifest,
} from '../../checkpoints/index.ts';
import {
  DatasetError,
  buildManifest,
  shardDataset,
  verifyManifest,
  type Dataset,
} from '../../datasets/index.ts';
import { ModelError, readSafetensors, writeSafetensors } from '../../model/index.ts';
import { MAGIC, PayloadError, decodePayload, encodePayload } from '../../pallet-bindings/index.ts';
import { WireError, decodeFrame, encodeFrame, type Frame } from '../../proto/index.ts';
import { arbCall, hex32 } from '../pallet-bindings/fixtures.ts';
import { FUZZ, mutated, returnsOrCoded } from './helpers.ts';

describe('fuzz: decoders of untrusted bytes', () => {
  it('frame decoder: random bytes and mutated frames decode or fail with a WireError code', () => {
    const frames: Frame[] = [
      { seq: 1, kind: 'hello', hello: { protocolVersion: 2, account: '5Grw', client: 'fedtune' } },
      {
        seq: 2,
        kind: 'authenticate',
        authenticate: { signature: new Uint8Array(64).fill(2), endpoint: 'ws://h:1' },
      },
      {
        seq: 3,
        kind: 'updateBegin',
        updateBegin: {
          taskId: 't',
          proposal: 1,
          round: 2,
          base: hex32(1),
          codec: 'dense',
          payloadBytes: 10,
          payloadSha256: new Uint8Array(32),
          samples: 4,
          shards: [1, 2],
          trainLoss: 1,
          signature: new Uint8Array(64),
        },
      },
    ];
    const valid = frames.map((f) => encodeFrame(f, new Uint8Array(8).fill(1)));
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 512 }), ...valid.map(mutated)), (bytes) =>
        returnsOrCoded(() => decodeFrame(bytes, 64 * 1024), WireError),
      ),
      FUZZ,
    );
  });

  it('update decoder: mutated payloads of every codec decode within the stated limits or fail with a code', () => {
    const tensors = [
      { name: 'a', shape: [3, 4], data: new Float32Array(12).map((_, i) => Math.sin(i)) },
      { name: 'b.bias', shape: [5], data: new Float32Array(5).fill(0.25) },
      { name: 'empty', shape: [0], data: new Float32Array(0) },
    ];
    const valid = CODECS.map((codec) => [codec, encodeUpdate(tensors, { codec, fraction: 0.5 })] as const);
    const maxValues = 64;
    const maxTensors = 8;
    fc.assert(
      fc.property(
        fc.oneof(...valid.map(([codec, bytes]) => mutated(bytes).map((b) => [codec, b] as const))),
        ([codec, bytes]) =>
          returnsOrCoded(() => {
            const out = decodeUpdate(bytes, { codec, maxValues, maxTensors });
            // Whatever decodes stays inside the limits the caller stated.
            expect(out.length).to.be.at.most(maxTensors);
            expect(out.reduce((n, t) => n + t.data.length, 0)).to.be.at.most(maxValues);
          }, AggregationError),
      ),
      FUZZ,
    );
  });

  it('update decoder: a header claiming millions of empty tensors is refused before anything is allocated', () => {
    // Hole 5: 12 M empty tensors in a 92 MiB payload exhausted the heap. Same shape, smaller: 2^20 tensors, 4 MiB.
    const count = 1 << 20;
    const bytes = new Uint8Array(16 + 4 * count);
    bytes.set([0x46, 0x54, 0x55, 0x50, 1, 0, 0, 0]);
    new DataView(bytes.buffer).setUint32(12, count, true);
    for (let t = 0; t < count; t++) bytes[16 + 4 * t + 2] = 1; // name length 0, rank 1, dim 0 → next tensor
    let code = '';
    try {
      decodeUpdate(bytes, { codec: 'dense' });
    } catch (error) {
      code = (error as AggregationError).code;
      expect((error as Error).message).to.contain(`at most ${MAX_TENSORS}`);
    }
    expect(code).to.equal('E_CODEC_MALFORMED');
    // A count larger than the bytes could hold is refused too, whatever the limit.
    const short = bytes.slice(0, 64);
    expect(() => decodeUpdate(short, { codec: 'dense', maxTensors: 2 ** 31 }))
      .to.throw(AggregationError)
      .with.property('code', 'E_CODEC_MALFORMED');
  });

  it('remark payload decoder: mutated payloads of every call decode or fail with a PayloadError code', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          arbCall.chain((call) =>
            mutated(encodePayload({ network: call.type === 'createNetwork' ? null : hex32(7), call })),
          ),
          fc.uint8Array({ maxLength: 256 }).map((tail) => new Uint8Array([...MAGIC, ...tail])),
        ),
        (bytes) => returnsOrCoded(() => decodePayload(bytes), PayloadError),
      ),
      FUZZ,
    );
  });

  it('safetensors reader: mutated files and random headers read or fail with a ModelError code', () => {
    const valid = writeSafetensors(
      [
        { name: 'w', shape: [2, 3], data: new Float32Array(6).fill(1.5) },
        { name: 'b', shape: [3], data: new Float32Array(3).fill(-2) },
      ],
      { format: 'pt' },
    );
    const header = (json: string) => {
      const text = new TextEncoder().encode(json);
      const out = new Uint8Array(8 + text.length + 16);
      new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
      out.set(text, 8);
      return out;
    };
    const entry = fc.record({
      dtype: fc.oneof(fc.constantFrom('F32', 'F16', 'BF16', 'toString', '__proto__', 'I64'), fc.anything()),
      shape: fc.oneof(fc.array(fc.integer({ min: -1, max: 2 ** 40 }), { maxLength: 3 }), fc.anything()),
      data_offsets: fc.oneof(fc.array(fc.integer({ min: -1, max: 64 }), { maxLength: 3 }), fc.anything()),
    });
    fc.assert(
      fc.property(
        fc.oneof(
          mutated(valid),
          fc
            .dictionary(fc.string({ maxLength: 8 }), entry, { maxKeys: 4 })
            .map((h) => header(JSON.stringify(h))),
          fc.json().map(header),
        ),
        (bytes) => returnsOrCoded(() => readSafetensors(bytes), ModelError),
      ),
      FUZZ,
    );
  });

  it('dataset manifest parser: mutated and random JSON manifests verify or fail with a DatasetError code', () => {
    const dataset: Dataset = {
      name: 'fuzz',
      records: Array.from({ length: 12 }, (_, i) => ({ id: `r${i}`, text: `record ${i} `.repeat(i + 1) })),
      license: 'CC0-1.0',
      source: 'test',
      description: 'fuzzing',
    };
    const manifest = buildManifest(
      dataset,
      shardDataset(dataset, { scheme: 'iid', shards: 3, seed: 1, evalFraction: 0.2 }),
    );
    const json = JSON.stringify(manifest);
    fc.assert(
      fc.property(
        fc.oneof(
          mutated(new TextEncoder().encode(json)).map((b) => Buffer.from(b).toString('utf8')),
          fc.json(),
          fc.constant(json),
        ),
        (text) => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            return; // not JSON: fetchManifest refuses it before this parser runs
          }
          returnsOrCoded(() => verifyManifest(parsed as never, manifest.root), DatasetError);
        },
      ),
      FUZZ,
    );
  });

  it('checkpoint manifest parser: mutated manifests parse or fail with a CheckpointError code', () => {
    const valid = encodeManifest(
      buildCheckpointManifest(new Uint8Array(5000).fill(3), { model: { layers: 2 } }),
    );
    const idOf = (b: Uint8Array) => `0x${createHash('sha256').update(b).digest('hex')}`;
    fc.assert(
      fc.property(mutated(valid), (bytes) =>
        returnsOrCoded(() => parseManifest(bytes, idOf(bytes)), CheckpointError),
      ),
      FUZZ,
    );
  });
});
