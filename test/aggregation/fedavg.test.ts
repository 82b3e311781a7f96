import { expect } from 'chai';
import {
  DEFAULT_FIT,
  AggregationError,
  createStrategy,
  type NamedTensor,
  type Strategy,
} from '../../aggregation/index.ts';
import { BACKENDS, SHAPES, SIZE, flat, maxAbsDiff, norm, randomVector, tensorsFrom } from './helpers.ts';

const W0 = Float32Array.from({ length: SIZE }, (_, i) => (i % 7) - 3);

function run(
  strategy: Strategy,
  round: number,
  updates: { worker: string; samples: number; v: Float32Array }[],
) {
  strategy.configureRound(round);
  for (const u of updates) {
    const r = strategy.accept({ worker: u.worker, samples: u.samples, tensors: tensorsFrom(u.v) });
    expect(r.ok, JSON.stringify(r)).to.equal(true);
  }
  return strategy.aggregate();
}

for (const backend of BACKENDS) {
  describe(`aggregation: FedAvg family (${backend})`, () => {
    it(`runs on the ${backend} backend`, () => {
      expect(createStrategy({ name: 'fedavg' }, tensorsFrom(W0), { backend }).backend).to.equal(backend);
    });

    it('FedAvg is the sample-weighted mean, scaled by the server learning rate', () => {
      const s = createStrategy({ name: 'fedavg', options: { serverLr: 0.5 } }, tensorsFrom(W0), { backend });
      const a = randomVector(1);
      const b = randomVector(2);
      const res = run(s, 1, [
        { worker: 'a', samples: 1, v: a },
        { worker: 'b', samples: 3, v: b },
      ]);
      const want = W0.map((w, i) => w + 0.5 * ((a[i]! + 3 * b[i]!) / 4));
      expect(maxAbsDiff(flat(res.weights), want)).to.be.below(1e-5);
      expect(
        maxAbsDiff(
          flat(res.delta),
          a.map((x, i) => (x + 3 * b[i]!) / 4),
        ),
      ).to.be.below(1e-6);
      expect(res.included).to.deep.equal(['a', 'b']);
      expect(res.metrics).to.include({ round: 1, accepted: 2, rejected: 0, samples: 4, clipped: 0 });
      expect(res.metrics.updateNormMax).to.be.closeTo(Math.max(norm(a), norm(b)), 1e-3);
    });

    it('hand-computed FedAvg on one tensor', () => {
      const shapes = [{ name: 'w', shape: [3] }];
      const s = createStrategy({ name: 'fedavg' }, tensorsFrom([1, 2, 3], shapes), { backend });
      s.configureRound(0);
      s.accept({ worker: 'x', samples: 1, tensors: tensorsFrom([1, 0, 0], shapes) });
      s.accept({ worker: 'y', samples: 2, tensors: tensorsFrom([0, 3, 0], shapes) });
      const res = s.aggregate();
      expect(Array.from(res.weights[0]!.data)).to.deep.equal([Math.fround(1 + 1 / 3), 4, 3]);
    });

    it('matches tensors by name in any order and returns them in the model order', () => {
      const s = createStrategy({ name: 'fedavg' }, tensorsFrom(W0), { backend });
      s.configureRound(1);
      const v = randomVector(3);
      expect(s.accept({ worker: 'a', samples: 2, tensors: tensorsFrom(v).reverse() }).ok).to.equal(true);
      const res = s.aggregate();
      expect(res.weights.map((t) => t.name)).to.deep.equal(SHAPES.map((t) => t.name));
      expect(
        maxAbsDiff(
          flat(res.weights),
          W0.map((w, i) => w + v[i]!),
        ),
      ).to.be.below(1e-6);
    });

    it('rejects bad updates with coded reasons and leaves the aggregate unchanged', () => {
      const good = [randomVector(4), randomVector(5)];
      const clean = createStrategy({ name: 'fedavg', options: { maxNorm: 100 } }, tensorsFrom(W0), {
        backend,
      });
      const want = run(clean, 1, [
        { worker: 'a', samples: 2, v: good[0]! },
        { worker: 'b', samples: 5, v: good[1]! },
      ]);

      const s = createStrategy({ name: 'fedavg', options: { maxNorm: 100 } }, tensorsFrom(W0), { backend });
      expect(s.accept({ worker: 'a', samples: 1, tensors: tensorsFrom(good[0]!) })).to.include({
        ok: false,
        code: 'E_ROUND',
      });
      s.configureRound(1);
      expect(s.accept({ worker: 'a', samples: 2, tensors: tensorsFrom(good[0]!) }).ok).to.equal(true);
      const nan = good[1]!.slice();
      nan[SIZE - 1] = NaN;
      const inf = good[1]!.slice();
      inf[17] = -Infinity;
      const big = good[1]!.map((x) => x * 1000);
      const wrongShape = tensorsFrom(good[1]!);
      wrongShape[1] = { ...wrongShape[1]!, shape: [1, 3] };
      const wrongName = tensorsFrom(good[1]!);
      wrongName[2] = { ...wrongName[2]!, name: 'head.bias' };
      const short = tensorsFrom(good[1]!);
      short[0] = { ...short[0]!, data: short[0]!.data.subarray(1) };
      const f64 = tensorsFrom(good[1]!) as unknown as { name: string; shape: number[]; data: unknown }[];
      f64[0]!.data = Float64Array.from(f64[0]!.data as Float32Array);
      const overflow = new Float32Array(SIZE).fill(3e38);
      const cases: [unknown, string][] = [
        [{ worker: 'b', samples: 5, tensors: tensorsFrom(nan) }, 'E_UPDATE_NOT_FINITE'],
        [{ worker: 'b', samples: 5, tensors: tensorsFrom(inf) }, 'E_UPDATE_NOT_FINITE'],
        [{ worker: 'b', samples: 5, tensors: tensorsFrom(big) }, 'E_UPDATE_NORM'],
        [{ worker: 'b', samples: 5, tensors: tensorsFrom(overflow) }, 'E_UPDATE_NORM'],
        [{ worker: 'b', samples: 5, tensors: wrongShape }, 'E_UPDATE_SHAPE'],
        [{ worker: 'b', samples: 5, tensors: wrongName }, 'E_UPDATE_SHAPE'],
        [{ worker: 'b', samples: 5, tensors: short }, 'E_UPDATE_SHAPE'],
        [{ worker: 'b', samples: 5, tensors: f64 }, 'E_UPDATE_SHAPE'],
        [{ worker: 'b', samples: 5, tensors: tensorsFrom(good[1]!).slice(1) }, 'E_UPDATE_SHAPE'],
        [
          { worker: 'b', samples: 5, tensors: [...tensorsFrom(good[1]!), tensorsFrom(good[1]!)[0]!] },
          'E_UPDATE_SHAPE',
        ],
        [{ worker: 'b', samples: 0, tensors: tensorsFrom(good[1]!) }, 'E_UPDATE_SAMPLES'],
        [{ worker: 'b', samples: NaN, tensors: tensorsFrom(good[1]!) }, 'E_UPDATE_SAMPLES'],
        [{ worker: '', samples: 5, tensors: tensorsFrom(good[1]!) }, 'E_UPDATE_WORKER'],
        [{ worker: 'a', samples: 5, tensors: tensorsFrom(good[1]!) }, 'E_DUPLICATE_UPDATE'],
      ];
      for (const [u, codeWanted] of cases) {
        const r = s.accept(u as Parameters<Strategy['accept']>[0]);
        expect(r.ok).to.equal(false);
        if (!r.ok) {
          expect(r.code).to.equal(codeWanted);
          expect(r.reason).to.be.a('string').with.length.above(0);
        }
      }
      expect(s.accept({ worker: 'b', samples: 5, tensors: tensorsFrom(good[1]!) }).ok).to.equal(true);
      const res = s.aggregate();
      expect(Array.from(flat(res.weights))).to.deep.equal(Array.from(flat(want.weights)));
      expect(res.metrics.rejected).to.equal(cases.length);
    });

    it('keeps O(params) memory whatever the number of workers', () => {
      const s = createStrategy({ name: 'fedavg' }, tensorsFrom(W0), { backend });
      s.configureRound(1);
      s.accept({ worker: 'w0', samples: 1, tensors: tensorsFrom(randomVector(0)) });
      const after1 = s.memoryBytes();
      for (let i = 1; i < 60; i++)
        s.accept({ worker: `w${i}`, samples: 1, tensors: tensorsFrom(randomVector(i)) });
      expect(s.memoryBytes()).to.equal(after1);
      s.aggregate();
    });

    it('enforces the round life', () => {
      const s = createStrategy({ name: 'fedavg', options: { minUpdates: 2, clip: null } }, tensorsFrom(W0), {
        backend,
      });
      s.configureRound(3);
      expect(() => s.configureRound(4))
        .to.throw(AggregationError)
        .with.property('code', 'E_ROUND');
      expect(() => s.aggregate())
        .to.throw(AggregationError)
        .with.property('code', 'E_NO_UPDATES');
      s.accept({ worker: 'a', samples: 1, tensors: tensorsFrom(randomVector(1)) });
      expect(() => s.aggregate())
        .to.throw(AggregationError)
        .with.property('code', 'E_NOT_ENOUGH_UPDATES');
      s.accept({ worker: 'b', samples: 1, tensors: tensorsFrom(randomVector(2)) });
      s.aggregate();
      expect(() => s.configureRound(3))
        .to.throw(AggregationError)
        .with.property('code', 'E_ROUND');
      expect(s.configureRound(4)).to.deep.equal({
        round: 4,
        strategy: 'fedavg',
        maxNorm: null,
        clipNorm: null,
        fedProxMu: 0,
        minUpdates: 2,
        fit: DEFAULT_FIT,
        noiseSeed: null,
      });
    });

    it('rejects bad weights with E_WEIGHTS', () => {
      const dup = [...tensorsFrom(W0), tensorsFrom(W0)[0]!];
      const nan = tensorsFrom(W0);
      nan[0]!.data[0] = NaN;
      for (const w of [[], dup, nan]) {
        expect(() => createStrategy({ name: 'fedavg' }, w as NamedTensor[], { backend }))
          .to.throw(AggregationError)
          .with.property('code', 'E_WEIGHTS');
      }
    });

    it('passes FedProx mu to workers and nothing else changes', () => {
      const s = createStrategy({ name: 'fedavg', options: { fedProxMu: 0.01 } }, tensorsFrom(W0), {
        backend,
      });
      expect(s.configureRound(1).fedProxMu).to.equal(0.01);
    });

    it('clips to a fixed bound before averaging', () => {
      const s = createStrategy(
        { name: 'fedavg', options: { clip: { mode: 'fixed', norm: 1 } } },
        tensorsFrom(W0),
        { backend },
      );
      expect(s.configureRound(1).clipNorm).to.equal(1);
      const a = randomVector(1);
      const small = a.map((x) => (x / norm(a)) * 0.5);
      const r1 = s.accept({ worker: 'a', samples: 1, tensors: tensorsFrom(a) });
      expect(r1).to.deep.include({ ok: true, clipped: true });
      expect(s.accept({ worker: 'b', samples: 1, tensors: tensorsFrom(small) })).to.deep.include({
        clipped: false,
      });
      const res = s.aggregate();
      // a clipped to unit norm, plus a half-length copy of the same direction: mean has norm 0.75.
      expect(norm(flat(res.delta))).to.be.closeTo(0.75, 1e-5);
      expect(res.metrics).to.include({ clipped: 1, clipBound: 1 });
    });

    it('clips adaptively to multiplier x the previous round median norm', () => {
      const s = createStrategy(
        { name: 'fedavg', options: { clip: { mode: 'adaptive', multiplier: 2 } } },
        tensorsFrom(W0),
        {
          backend,
        },
      );
      expect(s.configureRound(0).clipNorm).to.equal(null);
      s.accept({ worker: 'w', samples: 1, tensors: tensorsFrom(randomVector(6)) });
      expect(s.aggregate().metrics.clipped).to.equal(0);
      const unit = randomVector(7).map((x, _, v) => x / norm(v));
      run(
        s,
        1,
        [1, 2, 3].map((k) => ({ worker: `w${k}`, samples: 1, v: unit.map((x) => x * k) })),
      );
      expect(s.configureRound(2).clipNorm).to.be.closeTo(4, 1e-4);
      s.accept({ worker: 'big', samples: 1, tensors: tensorsFrom(unit.map((x) => x * 10)) });
      expect(norm(flat(s.aggregate().delta))).to.be.closeTo(4, 1e-4);
    });
  });

  describe(`aggregation: server optimisers (${backend})`, () => {
    const d = Float32Array.from({ length: SIZE }, (_, i) => ((i % 5) - 2) * 0.01);
    const one = (name: string, options: object, rounds = 1) => {
      const s = createStrategy({ name, options }, tensorsFrom(W0), { backend });
      let out: Float32Array = W0;
      for (let r = 1; r <= rounds; r++) out = flat(run(s, r, [{ worker: 'a', samples: 3, v: d }]).weights);
      return out;
    };

    it('FedAvgM: v <- beta v + d, x <- x + lr v', () => {
      const got = one('fedavgm', { serverLr: 0.5, momentum: 0.9 }, 2);
      expect(
        maxAbsDiff(
          got,
          W0.map((w, i) => w + 0.5 * d[i]! + 0.5 * 1.9 * d[i]!),
        ),
      ).to.be.below(1e-6);
    });

    const tau = 1e-3;
    const lr = 0.1;
    const cases: [string, (di: number) => number, number][] = [
      ['fedadam', (di) => 0.99 * tau * tau + 0.01 * di * di, 0.9],
      ['fedyogi', (di) => tau * tau - 0.01 * di * di * Math.sign(tau * tau - di * di), 0.9],
      ['fedadagrad', (di) => tau * tau + di * di, 0],
    ];
    for (const [name, v, beta1] of cases) {
      it(`${name}: one step of Reddi et al. Algorithm 2 by hand`, () => {
        const got = one(name, { serverLr: lr, tau });
        const want = W0.map((w, i) => w + (lr * (1 - beta1) * d[i]!) / (Math.sqrt(v(d[i]!)) + tau));
        expect(maxAbsDiff(got, want)).to.be.below(1e-5);
      });
    }

    it('FedAdam over three rounds matches a float64 re-implementation', () => {
      const got = one('fedadam', { serverLr: lr, tau, beta1: 0.8, beta2: 0.95 }, 3);
      const x = Float64Array.from(W0);
      const m = new Float64Array(SIZE);
      const vv = new Float64Array(SIZE).fill(tau * tau);
      for (let r = 0; r < 3; r++) {
        for (let i = 0; i < SIZE; i++) {
          m[i] = 0.8 * m[i]! + 0.2 * d[i]!;
          vv[i] = 0.95 * vv[i]! + 0.05 * d[i]! * d[i]!;
          x[i] = x[i]! + (lr * m[i]!) / (Math.sqrt(vv[i]!) + tau);
        }
      }
      expect(maxAbsDiff(got, x)).to.be.below(1e-4);
    });
  });
}

describe('aggregation: wasm kernels agree with the JS reference (streaming)', () => {
  it('FedAvg on a model with odd tensor sizes larger than one staging chunk', () => {
    const shapes = [
      { name: 'a', shape: [40001] },
      { name: 'b', shape: [3] },
      { name: 'c', shape: [129, 257] },
    ];
    const size = 40001 + 3 + 129 * 257;
    const w0 = randomVector(11, size);
    const out = BACKENDS.map((backend) => {
      const s = createStrategy({ name: 'fedavg' }, tensorsFrom(w0, shapes), { backend });
      s.configureRound(1);
      for (let k = 0; k < 5; k++)
        s.accept({
          worker: `w${k}`,
          samples: k + 1,
          tensors: tensorsFrom(randomVector(20 + k, size), shapes),
        });
      return s.aggregate();
    });
    expect(maxAbsDiff(flat(out[0]!.weights), flat(out[1]!.weights))).to.be.below(1e-5);
    expect(out[0]!.metrics.updateNormMax).to.be.closeTo(out[1]!.metrics.updateNormMax!, 1e-3);
  });
});
