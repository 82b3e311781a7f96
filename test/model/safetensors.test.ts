import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createModel,
  disposeModel,
  getWeights,
  initBackend,
  ModelError,
  modelFromSafetensors,
  modelToSafetensors,
  readSafetensors,
  writeSafetensors,
} from '../../model/index.ts';
import { tinyLm } from './helpers.ts';

const sample = () => [
  { name: 'a', shape: [2, 3], data: Float32Array.from([0, 1, -2.5, 3.14159, 1e-3, -65504]) },
  { name: 'b.w', shape: [4], data: Float32Array.from([Infinity, -0, 1e-8, 123456.789]) },
  { name: 'empty', shape: [0, 2], data: new Float32Array(0) },
];

function header(
  bytes: Uint8Array,
): Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
}

/** A file with a hand-made header and a data section of dataLen bytes. */
function craft(h: unknown, dataLen: number): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(h));
  const out = new Uint8Array(8 + json.length + dataLen);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

const code = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    expect(err).to.be.instanceOf(ModelError);
    return (err as ModelError).code;
  }
  return 'no error';
};

describe('model: safetensors', () => {
  it('round-trips F32 exactly, with metadata and an 8-byte aligned header', () => {
    const bytes = writeSafetensors(sample(), { format: 'pt', note: 'hi' });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + n) % 8).to.equal(0);
    const { tensors, metadata } = readSafetensors(bytes);
    expect(metadata).to.deep.equal({ format: 'pt', note: 'hi' });
    expect(tensors.map((t) => t.name)).to.deep.equal(['a', 'b.w', 'empty']);
    tensors.forEach((t, i) => {
      expect(t.shape).to.deep.equal(sample()[i]!.shape);
      expect(Array.from(t.data)).to.deep.equal(Array.from(sample()[i]!.data));
    });
  });

  it('round-trips F16 and BF16 within their precision, rounding to nearest even', () => {
    for (const [dtype, rel] of [
      ['F16', 2 ** -11],
      ['BF16', 2 ** -8],
    ] as const) {
      const bytes = writeSafetensors(sample(), {}, { dtype });
      expect(header(bytes).a!.dtype).to.equal(dtype);
      expect(header(bytes).a!.data_offsets).to.deep.equal([0, 12]);
      const { tensors } = readSafetensors(bytes);
      tensors.forEach((t, i) =>
        t.data.forEach((x, j) => {
          const want = sample()[i]!.data[j]!;
          if (!Number.isFinite(want) || (dtype === 'F16' && Math.abs(want) > 65519))
            expect(x).to.equal(want > 0 ? Infinity : -Infinity);
          else if (Math.abs(want) > 1e-4) expect(Math.abs(x - want)).to.be.at.most(Math.abs(want) * rel);
        }),
      );
    }
    // 1 + 2^-11 is halfway between two halves: ties go to the even one (1.0); 1 + 3·2^-11 goes up.
    const half = readSafetensors(
      writeSafetensors(
        [{ name: 'x', shape: [2], data: Float32Array.from([1 + 2 ** -11, 1 + 3 * 2 ** -11]) }],
        {},
        { dtype: 'F16' },
      ),
    );
    expect(Array.from(half.tensors[0]!.data)).to.deep.equal([1, 1 + 2 ** -9]);
    const bf = readSafetensors(
      writeSafetensors([{ name: 'x', shape: [1], data: Float32Array.from([NaN]) }], {}, { dtype: 'BF16' }),
    );
    expect(Number.isNaN(bf.tensors[0]!.data[0])).to.equal(true);
  });

  it('refuses truncated files, bad offsets, overlaps and unknown dtypes', () => {
    const good = writeSafetensors(sample());
    expect(code(() => readSafetensors(good.subarray(0, 5)))).to.equal('E_SAFETENSORS_TRUNCATED');
    expect(code(() => readSafetensors(good.subarray(0, 20)))).to.equal('E_SAFETENSORS_TRUNCATED');
    expect(code(() => readSafetensors(good.subarray(0, good.length - 1)))).to.equal(
      'E_SAFETENSORS_TRUNCATED',
    );
    expect(
      code(() => readSafetensors(craft({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, 4))),
    ).to.equal('E_SAFETENSORS_TRUNCATED');
    expect(
      code(() => readSafetensors(craft({ a: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, 8))),
    ).to.equal('E_SAFETENSORS_OFFSETS');
    expect(
      code(() => readSafetensors(craft({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, 8))),
    ).to.equal('E_SAFETENSORS_OFFSETS');
    expect(
      code(() => readSafetensors(craft({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, 8))),
    ).to.equal('E_SAFETENSORS_OFFSETS');
    expect(
      code(() =>
        readSafetensors(
          craft(
            {
              a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
              b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
            },
            12,
          ),
        ),
      ),
    ).to.equal('E_SAFETENSORS_OVERLAP');
    expect(
      code(() => readSafetensors(craft({ a: { dtype: 'F64', shape: [1], data_offsets: [0, 8] } }, 8))),
    ).to.equal('E_SAFETENSORS_DTYPE');
    expect(
      code(() => readSafetensors(craft({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8))),
    ).to.equal('E_SAFETENSORS_SHAPE');
    expect(code(() => readSafetensors(craft({ __metadata__: { n: 1 } }, 0)))).to.equal(
      'E_SAFETENSORS_METADATA',
    );
    const notJson = craft({}, 0);
    notJson[8] = 0x7b + 1;
    expect(code(() => readSafetensors(notJson))).to.equal('E_SAFETENSORS_HEADER');
    const huge = new Uint8Array(16);
    new DataView(huge.buffer).setBigUint64(0, 2n ** 40n, true);
    expect(code(() => readSafetensors(huge))).to.equal('E_SAFETENSORS_HEADER');
  });

  it('saves and loads a whole model with its config in the metadata', async () => {
    await initBackend({ backend: 'cpu' });
    const model = createModel(tinyLm(), { seed: 4 });
    const loaded = modelFromSafetensors(modelToSafetensors(model));
    expect(loaded.config).to.deep.equal(model.config);
    const [a, b] = [getWeights(model), getWeights(loaded)];
    a.forEach((t, i) => expect(Array.from(b[i]!.data)).to.deep.equal(Array.from(t.data)));
    disposeModel(model);
    disposeModel(loaded);
  });

  it('writes files that numpy reads as the safetensors layout says (when python3 with numpy is here)', function () {
    const dir = mkdtempSync(join(tmpdir(), 'fedtune-st-'));
    const file = join(dir, 'x.safetensors');
    writeFileSync(file, writeSafetensors(sample(), { format: 'pt' }, { dtype: 'F16' }));
    const script = `
import json, struct, sys
import numpy as np
b = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8+n])
data = b[8+n:]
out = {}
for k, v in h.items():
    if k == '__metadata__': continue
    s, e = v['data_offsets']
    out[k] = np.frombuffer(data[s:e], dtype={'F16': '<f2', 'F32': '<f4'}[v['dtype']]).reshape(v['shape']).astype(float).tolist()
print(json.dumps({'meta': h['__metadata__'], 'a': out['a'], 'bw': [str(x) for x in out['b.w']], 'aligned': (8 + n) % 8 == 0}))
`;
    let stdout: string;
    try {
      stdout = execFileSync('python3', ['-c', script, file], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      });
    } catch {
      this.skip();
    }
    const got = JSON.parse(stdout) as {
      meta: Record<string, string>;
      a: number[][];
      bw: string[];
      aligned: boolean;
    };
    expect(got.aligned).to.equal(true);
    expect(got.meta).to.deep.equal({ format: 'pt' });
    // numpy's float16 decoding and ours agree value for value.
    const ours = readSafetensors(writeSafetensors(sample(), {}, { dtype: 'F16' })).tensors;
    expect(got.a.flat()).to.deep.equal(Array.from(ours[0]!.data));
    expect(got.a.flat()[3]).to.equal(3.140625);
    // 1e-8 is below half the smallest half subnormal (2^-24), so it rounds to 0; 123456.789 overflows to inf.
    expect(got.bw).to.deep.equal(['inf', '-0.0', '0.0', 'inf']);
  });
});
