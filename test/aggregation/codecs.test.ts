import { expect } from 'chai';
import fc from 'fast-check';
import {
  AggregationError,
  CODECS,
  compressionRatio,
  createStrategy,
  createTopKState,
  decodeUpdate,
  encodeUpdate,
  type CodecName,
  type NamedTensor,
} from '../../aggregation/index.ts';
import { f16Table32, f32ToBf16Bits, f32ToF16Bits } from '../../aggregation/half.ts';
import { topKIndices } from '../../aggregation/select.ts';
import { SHAPES, flat, norm, randomVector, tensorsFrom } from './helpers.ts';

const BIG = [
  { name: 'embed', shape: [100, 64] },
  { name: 'bias', shape: [7] },
  { name: 'head', shape: [64, 50] },
];
const BIG_SIZE = 6400 + 7 + 3200;
const spec = (codec: CodecName) => ({ codec, expect: BIG });

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof AggregationError)) throw e;
    return e.code;
  }
  return 'none';
}

describe('aggregation: float16 / bfloat16 conversions', () => {
  it('every finite float16 survives float32 -> float16 exactly', () => {
    const t = f16Table32();
    for (let h = 0; h < 65536; h++)
      if (Number.isFinite(t[h]!)) expect(f32ToF16Bits(t[h]!), `0x${h.toString(16)}`).to.equal(h);
  });

  it('rounds to the nearest float16, ties to even', () => {
    const t = f16Table32();
    expect(t[f32ToF16Bits(1 + 2 ** -11)]).to.equal(1);
    expect(t[f32ToF16Bits(1 + 3 * 2 ** -11)]).to.equal(1 + 2 ** -9);
    expect(t[f32ToF16Bits(2 ** -25)]).to.equal(0);
    expect(t[f32ToF16Bits(3 * 2 ** -25)]).to.equal(2 ** -23);
    expect(t[f32ToF16Bits(65519)]).to.equal(65504);
    expect(t[f32ToF16Bits(65520)]).to.equal(Infinity);
    const x = randomVector(4, 20000, 100);
    for (const v of x) {
      const h = f32ToF16Bits(v);
      const err = Math.abs(t[h]! - v);
      for (const nb of [h - 1, h + 1])
        if ((nb & 0x7fff) < 0x7c00 && (nb & 0x8000) === (h & 0x8000))
          expect(err).to.be.at.most(Math.abs(t[nb]! - v));
    }
  });

  it('bfloat16 rounds to nearest even and keeps NaN a NaN', () => {
    const back = (b: number) => new Float32Array(new Uint32Array([b << 16]).buffer)[0]!;
    expect(back(f32ToBf16Bits(1 + 2 ** -8))).to.equal(1);
    expect(back(f32ToBf16Bits(1 + 3 * 2 ** -8))).to.equal(1 + 2 ** -6);
    expect(Number.isNaN(back(f32ToBf16Bits(NaN)))).to.equal(true);
  });
});

describe('aggregation: top-k selection', () => {
  it('picks exactly the k largest magnitudes, lowest index first among ties', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -20, max: 20 }), { minLength: 1, maxLength: 300 }),
        fc.nat(),
        (xs, kr) => {
          const x = Float32Array.from(xs, (v) => v / 4);
          const k = kr % (x.length + 1);
          const want = [...x.keys()]
            .sort((a, b) => Math.abs(x[b]!) - Math.abs(x[a]!) || a - b)
            .slice(0, k)
            .sort((a, b) => a - b);
          expect(Array.from(topKIndices(x, k))).to.deep.equal(want);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('aggregation: codecs', () => {
  const tensors = tensorsFrom(randomVector(1, BIG_SIZE, 0.05), BIG);
  const x = flat(tensors);

  it('round-trip within their stated error bounds', () => {
    const dense = decodeUpdate(encodeUpdate(tensors, { codec: 'dense' }), spec('dense'));
    expect(Array.from(flat(dense))).to.deep.equal(Array.from(x));
    expect(dense.map((t) => [t.name, t.shape])).to.deep.equal(BIG.map((t) => [t.name, t.shape]));

    const half = flat(decodeUpdate(encodeUpdate(tensors, { codec: 'f16' }), spec('f16')));
    const bf = flat(decodeUpdate(encodeUpdate(tensors, { codec: 'bf16' }), spec('bf16')));
    for (let i = 0; i < x.length; i++) {
      const a = Math.abs(x[i]!);
      expect(Math.abs(half[i]! - x[i]!)).to.be.at.most(a >= 2 ** -14 ? a * 2 ** -11 : 2 ** -25);
      expect(Math.abs(bf[i]! - x[i]!)).to.be.at.most(a * 2 ** -8);
    }

    for (const stochastic of [false, true]) {
      const chunk = 100;
      const q = flat(
        decodeUpdate(encodeUpdate(tensors, { codec: 'int8', chunk, stochastic, seed: 3 }), spec('int8')),
      );
      let o = 0;
      for (const t of tensors) {
        for (let c = 0; c < t.data.length; c += chunk) {
          const part = t.data.subarray(c, c + chunk);
          const scale = Math.max(...Array.from(part, Math.abs)) / 127;
          for (let i = 0; i < part.length; i++) {
            const err = Math.abs(q[o + c + i]! - part[i]!);
            if (stochastic) expect(err).to.be.below(scale * (1 + 1e-6));
            else expect(err).to.be.at.most(scale * (0.5 + 1e-6));
          }
        }
        o += t.data.length;
      }
    }

    const top = flat(decodeUpdate(encodeUpdate(tensors, { codec: 'topk', fraction: 0.1 }), spec('topk')));
    const topq = flat(
      decodeUpdate(
        encodeUpdate(tensors, { codec: 'topk-int8', fraction: 0.1, chunk: 64 }),
        spec('topk-int8'),
      ),
    );
    let o = 0;
    for (const t of tensors) {
      const k = Math.ceil(0.1 * t.data.length);
      const sorted = Array.from(t.data, Math.abs).sort((a, b) => b - a);
      const thr = sorted[k - 1]!;
      // topk-int8 with chunk 64: each chunk's scale is at most the tensor's largest magnitude / 127.
      const qerr = sorted[0]! / 127 / 2;
      let kept = 0;
      for (let i = 0; i < t.data.length; i++) {
        const v = top[o + i]!;
        if (v !== 0) {
          kept++;
          expect(v).to.equal(t.data[i]);
          expect(Math.abs(v)).to.be.at.least(thr);
          expect(Math.abs(topq[o + i]! - v)).to.be.at.most(qerr * (1 + 1e-6));
        } else expect(Math.abs(t.data[i]!)).to.be.at.most(thr);
      }
      expect(kept).to.equal(k);
      o += t.data.length;
    }
  });

  it('stochastic rounding is unbiased', () => {
    const v = Float32Array.from({ length: 256 }, (_, i) => (i === 0 ? 1 : 0.3));
    const t = [{ name: 'w', shape: [256], data: v }];
    let mean = 0;
    for (let seed = 0; seed < 400; seed++)
      mean +=
        decodeUpdate(encodeUpdate(t, { codec: 'int8', stochastic: true, seed }), { codec: 'int8' })[0]!
          .data[5]! / 400;
    expect(mean).to.be.closeTo(0.3, 0.0004);
    const det = decodeUpdate(encodeUpdate(t, { codec: 'int8' }), { codec: 'int8' })[0]!.data[5]!;
    // Round to nearest: 38.1 -> 38, a bias of 0.0008 the stochastic mean does not have.
    expect(Math.abs(det - 0.3)).to.be.above(0.0006);
  });

  it('are deterministic: same input and seed, same bytes', () => {
    for (const codec of CODECS) {
      const o = { codec, stochastic: codec.endsWith('int8'), seed: 9, fraction: 0.05 };
      expect(
        Buffer.from(encodeUpdate(tensors, o)).equals(Buffer.from(encodeUpdate(tensors, o))),
        codec,
      ).to.equal(true);
    }
    const a = encodeUpdate(tensors, { codec: 'int8', stochastic: true, seed: 1 });
    const b = encodeUpdate(tensors, { codec: 'int8', stochastic: true, seed: 2 });
    expect(Buffer.from(a).equals(Buffer.from(b))).to.equal(false);
    expect(codeOf(() => encodeUpdate(tensors, { codec: 'int8', stochastic: true }))).to.equal('E_CODEC_SPEC');
  });

  it('report their compression ratio', () => {
    const ratio = (codec: CodecName) =>
      compressionRatio(tensors, encodeUpdate(tensors, { codec, fraction: 0.01, chunk: 256 }));
    expect(ratio('dense')).to.be.closeTo(1, 0.01);
    expect(ratio('f16')).to.be.closeTo(2, 0.02);
    expect(ratio('bf16')).to.be.closeTo(2, 0.02);
    expect(ratio('int8')).to.be.closeTo(4 / (1 + 4 / 256), 0.06);
    expect(ratio('topk')).to.be.within(40, 50);
    expect(ratio('topk-int8')).to.be.within(60, 80);
  });

  it('error feedback makes the cumulative top-k sum converge to the dense sum', () => {
    for (const codec of ['topk', 'topk-int8'] as const) {
      const state = createTopKState();
      const dense = new Float64Array(BIG_SIZE);
      const sent = new Float64Array(BIG_SIZE);
      const lossy = new Float64Array(BIG_SIZE);
      const rel: number[] = [];
      for (let r = 1; r <= 200; r++) {
        // A persistent direction plus noise, as successive rounds' updates are.
        const g = randomVector(1000 + r, BIG_SIZE, 0.02).map((v, i) => v + 0.01 * Math.sin(i));
        const u = tensorsFrom(g, BIG);
        const d = flat(decodeUpdate(encodeUpdate(u, { codec, fraction: 0.02, state }), spec(codec)));
        const plain = flat(decodeUpdate(encodeUpdate(u, { codec, fraction: 0.02 }), spec(codec)));
        for (let i = 0; i < BIG_SIZE; i++) {
          dense[i] = dense[i]! + g[i]!;
          sent[i] = sent[i]! + d[i]!;
          lossy[i] = lossy[i]! + plain[i]!;
        }
        if (r % 50 === 0) rel.push(norm(dense.map((v, i) => v - sent[i]!)) / norm(dense));
      }
      // Whatever was not sent is exactly the residual the worker still holds.
      const residual = new Float64Array(BIG_SIZE);
      let o = 0;
      for (const t of BIG) {
        residual.set(state.residual.get(t.name)!, o);
        o += t.shape.reduce((a, b) => a * b, 1);
      }
      expect(norm(dense.map((v, i) => v - sent[i]! - residual[i]!)) / norm(dense)).to.be.below(1e-4);
      expect(rel[3]).to.be.below(rel[0]!);
      expect(rel[3]).to.be.below(0.15);
      expect(norm(dense.map((v, i) => v - lossy[i]!)) / norm(dense)).to.be.above(0.5);
    }
  });

  it('refuse non-finite input and float16 overflow with E_CODEC_INPUT', () => {
    const nan = tensorsFrom(randomVector(2), SHAPES);
    nan[1]!.data[0] = NaN;
    for (const codec of CODECS) expect(codeOf(() => encodeUpdate(nan, { codec }))).to.equal('E_CODEC_INPUT');
    const big = tensorsFrom(new Float32Array(80).fill(70000), SHAPES);
    expect(codeOf(() => encodeUpdate(big, { codec: 'f16' }))).to.equal('E_CODEC_INPUT');
    expect(codeOf(() => encodeUpdate(big, { codec: 'unknown' as CodecName }))).to.equal('E_CODEC_UNKNOWN');
  });

  describe('malformed payloads are coded errors', () => {
    const small: NamedTensor[] = [
      { name: 'w', shape: [10], data: Float32Array.from({ length: 10 }, (_, i) => i - 4.5) },
    ];
    const enc = (codec: CodecName, o: object = {}) =>
      encodeUpdate(small, { codec, chunk: 4, fraction: 0.3, ...o });
    // Header 16 + name length 2 + "w" 1 + rank 1 + dim 4 = payload at 24.
    const P = 24;
    const patch = (b: Uint8Array, at: number, bytes: number[]) => {
      const c = b.slice();
      c.set(bytes, at);
      return c;
    };
    const f32le = (v: number) => [...new Uint8Array(new Float32Array([v]).buffer)];
    const u32le = (v: number) => [...new Uint8Array(new Uint32Array([v]).buffer)];
    const cases: [string, CodecName, () => Uint8Array, string][] = [
      ['empty', 'dense', () => new Uint8Array(0), 'E_CODEC_MALFORMED'],
      ['one byte short', 'dense', () => enc('dense').subarray(0, -1), 'E_CODEC_MALFORMED'],
      ['one byte long', 'dense', () => new Uint8Array([...enc('dense'), 0]), 'E_CODEC_MALFORMED'],
      ['bad magic', 'dense', () => patch(enc('dense'), 0, [0x47]), 'E_CODEC_MALFORMED'],
      ['bad version', 'dense', () => patch(enc('dense'), 4, [2]), 'E_CODEC_MALFORMED'],
      ['unknown codec id', 'dense', () => patch(enc('dense'), 5, [77]), 'E_CODEC_UNKNOWN'],
      ['other codec', 'f16', () => enc('dense'), 'E_CODEC_MISMATCH'],
      ['NaN scale', 'int8', () => patch(enc('int8'), P, f32le(NaN)), 'E_CODEC_MALFORMED'],
      ['negative scale', 'int8', () => patch(enc('int8'), P, f32le(-1)), 'E_CODEC_MALFORMED'],
      ['infinite scale', 'int8', () => patch(enc('int8'), P + 4, f32le(Infinity)), 'E_CODEC_MALFORMED'],
      ['int8 -128', 'int8', () => patch(enc('int8'), P + 12 + 3, [0x80]), 'E_CODEC_MALFORMED'],
      ['zero chunk', 'int8', () => patch(enc('int8'), 8, u32le(0)), 'E_CODEC_MALFORMED'],
      ['index out of range', 'topk', () => patch(enc('topk'), P + 4, u32le(10)), 'E_CODEC_MALFORMED'],
      ['indices not increasing', 'topk', () => patch(enc('topk'), P + 8, u32le(0)), 'E_CODEC_MALFORMED'],
      ['k beyond n', 'topk', () => patch(enc('topk'), P, u32le(11)), 'E_CODEC_MALFORMED'],
      ['NaN value', 'topk', () => patch(enc('topk'), P + 4 + 12, f32le(NaN)), 'E_CODEC_MALFORMED'],
      [
        'topk-int8 NaN scale',
        'topk-int8',
        () => patch(enc('topk-int8'), P + 4 + 12, f32le(NaN)),
        'E_CODEC_MALFORMED',
      ],
      ['huge declared shape', 'topk', () => patch(enc('topk'), 20, u32le(0xffffffff)), 'E_CODEC_MALFORMED'],
      ['name not UTF-8', 'dense', () => patch(enc('dense'), 18, [0xff]), 'E_CODEC_MALFORMED'],
    ];
    for (const [what, codec, bytes, want] of cases) {
      it(what, () => expect(codeOf(() => decodeUpdate(bytes(), { codec }))).to.equal(want));
    }
    it('a shape other than expected', () => {
      expect(
        codeOf(() => decodeUpdate(enc('dense'), { codec: 'dense', expect: [{ name: 'w', shape: [2, 5] }] })),
      ).to.equal('E_CODEC_MISMATCH');
      expect(
        codeOf(() => decodeUpdate(enc('dense'), { codec: 'dense', expect: [{ name: 'v', shape: [10] }] })),
      ).to.equal('E_CODEC_MISMATCH');
    });
    it('non-zero padding', () => {
      const odd: NamedTensor[] = [{ name: 'ab', shape: [3], data: new Float32Array([1, 2, 3]) }];
      // 16 + 2 + "ab" + rank 1 + dim 4 = 25: three bytes of padding at 25..27.
      const b = encodeUpdate(odd, { codec: 'dense' });
      expect(b.length).to.equal(28 + 12);
      expect(codeOf(() => decodeUpdate(patch(b, 26, [1]), { codec: 'dense' }))).to.equal('E_CODEC_MALFORMED');
    });
    it('an unknown codec name', () =>
      expect(codeOf(() => decodeUpdate(enc('dense'), { codec: 'zip' as CodecName }))).to.equal(
        'E_CODEC_UNKNOWN',
      ));

    it('random truncations and byte flips never crash or throw anything but coded errors', () => {
      const payloads = CODECS.map(
        (c) =>
          [
            c,
            encodeUpdate(tensorsFrom(randomVector(5), SHAPES), { codec: c, fraction: 0.2, chunk: 8 }),
          ] as const,
      );
      fc.assert(
        fc.property(
          fc.nat(payloads.length - 1),
          fc.nat(),
          fc.nat(255),
          fc.boolean(),
          (which, at, value, truncate) => {
            const [codec, p] = payloads[which]!;
            const b = truncate ? p.subarray(0, at % p.length) : patch(p, at % p.length, [value]);
            try {
              const out = decodeUpdate(b, { codec });
              for (const t of out) expect(t.data.length).to.equal(t.shape.reduce((a, c) => a * c, 1));
            } catch (e) {
              expect(e).to.be.instanceOf(AggregationError);
            }
          },
        ),
        { numRuns: 2000 },
      );
    });
  });

  it('decode into a caller-owned flat buffer, reused across updates', () => {
    const out = new Float32Array(BIG_SIZE).fill(7);
    for (const codec of CODECS) {
      const want = flat(decodeUpdate(encodeUpdate(tensors, { codec }), { codec }));
      const got = decodeUpdate(encodeUpdate(tensors, { codec }), { codec, out });
      expect(got[0]!.data.buffer).to.equal(out.buffer);
      expect(Array.from(out)).to.deep.equal(Array.from(want));
    }
    expect(
      codeOf(() =>
        decodeUpdate(encodeUpdate(tensors, { codec: 'dense' }), {
          codec: 'dense',
          out: new Float32Array(10),
        }),
      ),
    ).to.equal('E_CODEC_MISMATCH');
  });

  it('a decoded update goes straight into a strategy', () => {
    const w0 = tensorsFrom(new Float32Array(BIG_SIZE), BIG);
    const s = createStrategy({ name: 'fedavg' }, w0);
    s.configureRound(1);
    const bytes = encodeUpdate(tensors, { codec: 'f16' });
    expect(
      s.accept({ worker: 'a', samples: 3, tensors: decodeUpdate(bytes, { codec: 'f16', expect: BIG }) }).ok,
    ).to.equal(true);
    expect(norm(flat(s.aggregate().weights))).to.be.closeTo(norm(x), 1e-3 * norm(x));
  });
});
