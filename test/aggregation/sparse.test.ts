// Sparse (top-k) updates: checked and folded from their k values, with the same verdicts, norms and aggregate bytes as
// the same payloads decoded dense, for every strategy on both kernels.
import { expect } from 'chai';
import {
  AggregationError,
  STRATEGY_NAMES,
  createStrategy,
  decodeClientUpdate,
  decodeSparseUpdate,
  decodeUpdate,
  encodeUpdate,
  seededRng,
  type AnyClientUpdate,
  type CodecName,
  type NamedTensor,
  type StrategyName,
} from '../../aggregation/index.ts';
import { sumSquaresF32 } from '../../aggregation/kernels/reference.ts';
import { sparseSumSquaresF32 } from '../../aggregation/kernels/sparse.ts';

/** Larger than one Σx² block (16,384 floats), tails that are not a multiple of 16, a tensor that is all zeros. */
const MODEL = [
  { name: 'w1', shape: [129, 257] },
  { name: 'b1', shape: [3] },
  { name: 'zero', shape: [40] },
  { name: 'w2', shape: [16, 33] },
  { name: 'b2', shape: [17] },
];

function tensors(seed: number, scale: number): NamedTensor[] {
  const rng = seededRng(seed, 3);
  return MODEL.map((s) => {
    const data = new Float32Array(s.shape.reduce((a, b) => a * b, 1));
    if (s.name === 'zero') {
      for (let i = 0; i < data.length; i += 3) data[i] = -0;
    } else {
      rng.gaussian(data, scale);
      for (let i = 0; i < data.length; i += 7) data[i] = data[i]! * 2 ** ((rng.u32() % 24) - 12);
    }
    return { name: s.name, shape: [...s.shape], data };
  });
}

const SCALES = [1e-3, 0.02, 0.5, 3, 0.01, 40, 0.2];
const FRACTIONS = [0.01, 0.3, 1, 0.05, 0.002, 0.6, 0.1];

/** Three rounds of seven payloads; the workers send their tensors in another order than the layout's. */
function payloads(codec: CodecName): { worker: string; samples: number; payload: Uint8Array }[][] {
  return [0, 1, 2].map((r) =>
    Array.from({ length: 7 }, (_, k) => {
      let t = tensors(1000 * r + k, SCALES[(k + r) % 7]!);
      if (r === 2 && k === 4) for (const x of t) if (x.name !== 'zero') x.data.fill(1e18); // Σx² overflows float32
      if (k % 2 === 1) t = [...t].reverse();
      const payload = encodeUpdate(t, { codec, fraction: FRACTIONS[(k + r) % 7]! });
      return { worker: `w${k}`, samples: 1 + ((k * 37 + r * 11) % 90), payload };
    }),
  );
}

const bytesOf = (ts: NamedTensor[]) =>
  Buffer.concat(ts.map((t) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)));

function run(
  spec: object,
  backend: 'wasm' | 'js',
  rounds: { worker: string; samples: number; payload: Uint8Array }[][],
  codec: CodecName,
  sparse: boolean,
) {
  const s = createStrategy(spec, tensors(99, 0.1), { backend });
  const out = {
    checks: [] as string[],
    accepts: [] as string[],
    bytes: [] as Buffer[],
    metrics: [] as object[],
  };
  rounds.forEach((updates, r) => {
    s.configureRound(r);
    for (const u of updates) {
      const update: AnyClientUpdate = sparse
        ? decodeClientUpdate(u.payload, { worker: u.worker, samples: u.samples, codec, maxValues: 1e6 })
        : { worker: u.worker, samples: u.samples, tensors: decodeUpdate(u.payload, { codec }) };
      if (sparse) expect(update).to.have.property('sparse');
      const c = s.check(update);
      out.checks.push(c.ok ? `ok ${c.norm}` : c.code);
      const a = s.accept(update);
      out.accepts.push(a.ok ? `ok ${a.norm} ${a.clipped}` : a.code);
    }
    const agg = s.aggregate();
    out.bytes.push(bytesOf(agg.weights), bytesOf(agg.delta));
    out.metrics.push(agg.metrics);
  });
  out.bytes.push(Buffer.from(s.exportState()));
  s.dispose();
  return out;
}

function specsFor(name: StrategyName): object[] {
  const own: Partial<Record<StrategyName, object>> = {
    'trimmed-mean': { beta: 0.2 },
    krum: { f: 1 },
    'multi-krum': { f: 1, m: 3 },
  };
  if (name === 'dp-fedavg')
    return [{ name, options: { clipNorm: 2, noiseMultiplier: 0.5, samplingRate: 0.1, seed: 7 } }];
  return [
    { clip: null },
    { clip: { mode: 'fixed', norm: 3 }, maxNorm: 1e7 },
    { clip: { mode: 'adaptive', multiplier: 1.5, initial: 5 } },
  ].map((o) => ({ name, options: { ...own[name], ...o } }));
}

describe('aggregation: sparse top-k updates give the dense bytes', function () {
  this.timeout(120_000);

  for (const codec of ['topk', 'topk-int8'] as const) {
    const rounds = payloads(codec);
    for (const name of STRATEGY_NAMES) {
      it(`${codec}, ${name}: sparse = dense, bit for bit, on wasm and JS kernels`, () => {
        for (const spec of specsFor(name)) {
          const dense = run(spec, 'wasm', rounds, codec, false);
          for (const backend of ['wasm', 'js'] as const) {
            const sparse = run(spec, backend, rounds, codec, true);
            const what = `${JSON.stringify(spec)} ${backend}`;
            expect(sparse.checks, what).to.deep.equal(dense.checks);
            expect(sparse.accepts, what).to.deep.equal(dense.accepts);
            expect(sparse.metrics, what).to.deep.equal(dense.metrics);
            sparse.bytes.forEach((b, i) =>
              expect(b.equals(dense.bytes[i]!), `${what}: buffer ${i}`).to.equal(true),
            );
          }
          // The rounds exercise what they claim: a refusal by the norm bound, clipping where there is a bound.
          if (JSON.stringify(spec).includes('maxNorm')) expect(dense.accepts).to.include('E_UPDATE_NORM');
          if (name !== 'dp-fedavg' && JSON.stringify(spec).includes('fixed'))
            expect(dense.metrics.some((m) => (m as { clipped: number }).clipped > 0)).to.equal(true);
        }
      });
    }
  }

  it('the comparison can fail: a value moved to another index gives other bytes', () => {
    const spec = { name: 'fedavg', options: { clip: null } };
    const rounds = payloads('topk');
    const moved = rounds.map((us) => us.map((u) => ({ ...u, payload: u.payload.slice() })));
    // The first payload's first tensor ("w1", sent first): its first index, one further on.
    const p = moved[0]![0]!.payload;
    const at = 16 + 2 + 2 + 1 + 2 * 4 + 3 + 4; // header, name length and name, rank, dims, padding to 4, k
    const dv = new DataView(p.buffer, p.byteOffset);
    dv.setUint32(at, dv.getUint32(at, true) + 1, true);
    const a = run(spec, 'js', rounds, 'topk', true);
    const b = run(spec, 'js', moved, 'topk', true);
    expect(a.bytes[0]!.equals(b.bytes[0]!)).to.equal(false);
  });

  it('the sparse Σx² is the defined dense one, ±0 and float32 overflow included', () => {
    for (const [k, fraction] of FRACTIONS.entries()) {
      const t = tensors(k, SCALES[k]!);
      if (k === 3) t[0]!.data.fill(3e19);
      const sparse = decodeSparseUpdate(encodeUpdate(t, { codec: 'topk', fraction }), { codec: 'topk' });
      const dense = decodeUpdate(encodeUpdate(t, { codec: 'topk', fraction }), { codec: 'topk' });
      expect(
        Object.is(
          sparseSumSquaresF32(
            sparse,
            dense.map((d) => d.data.length),
          ),
          sumSquaresF32(dense.map((d) => d.data)),
        ),
        `fraction ${fraction}`,
      ).to.equal(true);
    }
  });

  it('refuses what the dense path refuses, with the same codes: shapes, names, non-finite values, bad indices', () => {
    const s = createStrategy({ name: 'fedavg', options: { maxNorm: 1e4 } }, tensors(99, 0.1));
    s.configureRound(0);
    const good = decodeSparseUpdate(encodeUpdate(tensors(5, 0.01), { codec: 'topk' }), { codec: 'topk' });
    const withInf = good.map((t, i) =>
      i === 3 ? { ...t, values: t.values.map((v, j) => (j === 2 ? Infinity : v)) } : t,
    );
    const denseInf = decodeUpdate(encodeUpdate(tensors(5, 0.01), { codec: 'topk' }), { codec: 'topk' });
    denseInf[3]!.data[good[3]!.indices[2]!] = Infinity;
    const cases: [string, AnyClientUpdate, string][] = [
      ['missing tensor', { worker: 'a', samples: 1, sparse: good.slice(1) }, 'E_UPDATE_SHAPE'],
      [
        'renamed tensor',
        { worker: 'a', samples: 1, sparse: good.map((t, i) => (i ? t : { ...t, name: 'x' })) },
        'E_UPDATE_SHAPE',
      ],
      [
        'index out of range',
        {
          worker: 'a',
          samples: 1,
          sparse: good.map((t, i) =>
            i === 1 ? { ...t, indices: Uint32Array.of(3), values: Float32Array.of(1) } : t,
          ),
        },
        'E_UPDATE_SHAPE',
      ],
      [
        'indices not increasing',
        {
          worker: 'a',
          samples: 1,
          sparse: good.map((t, i) =>
            i === 4 ? { ...t, indices: Uint32Array.of(2, 2), values: Float32Array.of(1, 1) } : t,
          ),
        },
        'E_UPDATE_SHAPE',
      ],
      [
        'a value and no index',
        {
          worker: 'a',
          samples: 1,
          sparse: good.map((t, i) => (i === 4 ? { ...t, values: new Float32Array(t.values.length + 1) } : t)),
        },
        'E_UPDATE_SHAPE',
      ],
      [
        'over the norm bound',
        { worker: 'a', samples: 1, sparse: good.map((t) => ({ ...t, values: t.values.map(() => 1e4) })) },
        'E_UPDATE_NORM',
      ],
      ['no samples', { worker: 'a', samples: 0, sparse: good }, 'E_UPDATE_SAMPLES'],
    ];
    for (const [what, update, code] of cases) {
      expect(s.check(update), what).to.include({ ok: false, code });
      expect(s.accept(update), what).to.include({ ok: false, code });
    }
    // A non-finite value is named as the dense path names it: the tensor and the index in it.
    const sparseVerdict = s.check({ worker: 'a', samples: 1, sparse: withInf });
    const denseVerdict = s.check({ worker: 'a', samples: 1, tensors: denseInf });
    expect(sparseVerdict).to.deep.equal(denseVerdict);
    expect(sparseVerdict).to.include({ ok: false, code: 'E_UPDATE_NOT_FINITE' });
    // Nothing refused touched the round: a good update is still the first.
    expect(s.accept({ worker: 'a', samples: 1, sparse: good })).to.include({ ok: true });
    expect(s.accept({ worker: 'a', samples: 1, sparse: good })).to.include({
      ok: false,
      code: 'E_DUPLICATE_UPDATE',
    });
    expect(() => decodeSparseUpdate(encodeUpdate(tensors(5, 0.01), { codec: 'dense' }), { codec: 'dense' }))
      .to.throw(AggregationError)
      .with.property('code', 'E_CODEC_SPEC');
    s.dispose();
  });
});
