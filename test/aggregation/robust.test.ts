import { expect } from 'chai';
import { AggregationError, createStrategy, krumScores, seededRng } from '../../aggregation/index.ts';
import { pruneNetwork, sortingNetwork, WasmUpdateStore } from '../../aggregation/kernels/simd.ts';
import { JsUpdateStore } from '../../aggregation/kernels/reference.ts';
import { BACKENDS, flat, maxAbsDiff, norm, randomVector } from './helpers.ts';

const t4 = (v: number[]) => [{ name: 'w', shape: [4], data: Float32Array.from(v) }];

function aggregateRows(
  name: string,
  options: object,
  rows: number[][],
  backend: 'wasm' | 'js',
  samples?: number[],
) {
  // By-hand figures are for the rule alone: the default adaptive clip is turned off unless a test sets one.
  const s = createStrategy({ name, options: { clip: null, ...options } }, t4([0, 0, 0, 0]), { backend });
  s.configureRound(1);
  rows.forEach((r, i) => {
    const res = s.accept({ worker: `w${i}`, samples: samples?.[i] ?? 1, tensors: t4(r) });
    expect(res.ok, JSON.stringify(res)).to.equal(true);
  });
  return s.aggregate();
}

describe('aggregation: sorting networks', () => {
  it('sort every 0/1 input for n = 1..14 (the 0-1 principle makes that a proof)', () => {
    for (let n = 1; n <= 14; n++) {
      const net = sortingNetwork(n);
      for (let mask = 0; mask < 1 << n; mask++) {
        const v = Array.from({ length: n }, (_, i) => (mask >> i) & 1);
        for (const [a, b] of net) {
          if (v[a]! > v[b]!) [v[a], v[b]] = [v[b]!, v[a]!];
        }
        for (let i = 1; i < n; i++) expect(v[i - 1]! <= v[i]!, `n=${n} mask=${mask}`).to.equal(true);
      }
    }
    expect(sortingNetwork(16)).to.have.length(63);
  });

  it('a network pruned to the middle ranks still puts the right values there', () => {
    const rng = seededRng(3);
    for (const n of [5, 8, 16, 21]) {
      const lo = (n - 1) >> 1;
      const hi = n % 2 ? lo + 1 : lo + 2;
      const net = pruneNetwork(sortingNetwork(n), lo, hi);
      expect(net.length).to.be.below(sortingNetwork(n).length + 1);
      for (let trial = 0; trial < 200; trial++) {
        const v = Array.from({ length: n }, () => rng.u32() % 7);
        const sorted = [...v].sort((a, b) => a - b);
        for (const [a, b] of net) if (v[a]! > v[b]!) [v[a], v[b]] = [v[b]!, v[a]!];
        for (let r = lo; r < hi; r++) expect(v[r]).to.equal(sorted[r]);
      }
    }
  });
});

for (const backend of BACKENDS) {
  describe(`aggregation: robust rules (${backend})`, () => {
    it('median by hand, odd and even n', () => {
      const odd = aggregateRows(
        'median',
        {},
        [
          [1, -5, 0, 9],
          [5, 2, 0, -9],
          [2, 3, 1, 0],
        ],
        backend,
      );
      expect(Array.from(flat(odd.delta))).to.deep.equal([2, 2, 0, 0]);
      const even = aggregateRows(
        'median',
        {},
        [
          [1, 0, 0, 0],
          [2, 0, 0, 0],
          [3, 0, 0, 1],
          [10, 0, 1, 1],
        ],
        backend,
      );
      expect(Array.from(flat(even.delta))).to.deep.equal([2.5, 0, 0, 0.5]);
      expect(even.metrics.accepted).to.equal(4);
    });

    it('trimmed mean by hand: beta 0.2 of 5 drops one each side', () => {
      const r = aggregateRows(
        'trimmed-mean',
        { beta: 0.2 },
        [
          [1, 0, 0, 0],
          [2, 0, 0, 0],
          [3, 0, 0, 0],
          [4, 0, 0, 0],
          [100, 0, 0, 0],
        ],
        backend,
      );
      expect(flat(r.delta)[0]).to.be.closeTo(3, 1e-6);
      expect(r.metrics.trimmed).to.equal(1);
      const none = aggregateRows(
        'trimmed-mean',
        { beta: 0 },
        [
          [1, 0, 0, 0],
          [2, 0, 0, 0],
          [6, 0, 0, 0],
        ],
        backend,
      );
      expect(flat(none.delta)[0]).to.be.closeTo(3, 1e-6);
    });

    it('Krum by hand: picks the point with the smallest summed distance to its n-f-2 neighbours', () => {
      // Points on a line: 0, 1, 2, 3, 50. f = 1, so each score sums the 2 nearest squared distances.
      const rows = [0, 1, 2, 3, 50].map((x) => [x, 0, 0, 0]);
      const r = aggregateRows('krum', { f: 1 }, rows, backend);
      // Scores: 0: 1+4=5, 1: 1+1=2, 2: 1+1=2, 3: 1+4=5, 50: 47²+48². Tie broken by index: worker w1.
      expect(r.included).to.deep.equal(['w1']);
      expect(Array.from(flat(r.delta))).to.deep.equal([1, 0, 0, 0]);
      const multi = aggregateRows('multi-krum', { f: 1, m: 3 }, rows, backend, [1, 1, 2, 1, 1]);
      // Best three scores: w1 (2), w2 (2), then w0 (5, ties w3 by index); sample-weighted mean (1 + 2·2 + 0) / 4.
      expect(multi.included).to.deep.equal(['w0', 'w1', 'w2']);
      expect(flat(multi.delta)[0]).to.be.closeTo(5 / 4, 1e-6);
    });

    it('krumScores from a distance matrix', () => {
      const pts = [0, 1, 3, 7];
      const d = new Float64Array(16);
      pts.forEach((a, i) => pts.forEach((b, j) => (d[i * 4 + j] = (a - b) ** 2)));
      expect(krumScores(d, 4, 1)).to.deep.equal([1, 1, 4, 16]);
    });

    it('refuse to aggregate too few updates with E_NOT_ENOUGH_UPDATES', () => {
      expect(() =>
        aggregateRows(
          'krum',
          { f: 1 },
          [
            [1, 0, 0, 0],
            [2, 0, 0, 0],
            [3, 0, 0, 0],
            [4, 0, 0, 0],
          ],
          backend,
        ),
      )
        .to.throw(AggregationError)
        .with.property('code', 'E_NOT_ENOUGH_UPDATES');
    });

    it('clip each update before the rule (fixed and adaptive to the round median norm)', () => {
      const fixed = aggregateRows(
        'median',
        { clip: { mode: 'fixed', norm: 1 } },
        [
          [3, 4, 0, 0],
          [0.3, 0.4, 0, 0],
          [6, 8, 0, 0],
        ],
        backend,
      );
      expect(Array.from(flat(fixed.delta)).map((x) => +x.toFixed(6))).to.deep.equal([0.6, 0.8, 0, 0]);
      expect(fixed.metrics.clipped).to.equal(2);
      const adaptive = aggregateRows(
        'trimmed-mean',
        { beta: 0, clip: { mode: 'adaptive', multiplier: 1 } },
        [
          [1, 0, 0, 0],
          [2, 0, 0, 0],
          [30, 0, 0, 0],
        ],
        backend,
      );
      // Median norm 2: the 30 becomes 2; mean (1 + 2 + 2) / 3.
      expect(flat(adaptive.delta)[0]).to.be.closeTo(5 / 3, 1e-6);
      expect(adaptive.metrics).to.include({ clipBound: 2, clipped: 1 });
    });

    for (const attack of ['scaled', 'sign-flipped'] as const) {
      it(`under ${attack} attackers, Krum keeps honest updates and median / trimmed mean stay near the honest mean while FedAvg does not`, () => {
        const dim = 2000;
        const shapes = [{ name: 'w', shape: [dim] }];
        const rng = seededRng(42);
        const mu = new Float32Array(dim);
        rng.gaussian(mu, 1);
        const honest = Array.from({ length: 12 }, () => {
          const noise = new Float32Array(dim);
          rng.gaussian(noise, 0.3);
          return mu.map((m, i) => m + noise[i]!);
        });
        const honestMean = mu.map((_, i) => honest.reduce((s, h) => s + h[i]!, 0) / honest.length);
        const bad = attack === 'scaled' ? mu.map((m) => 20 * m) : mu.map((m) => -4 * m);
        const f = 3;
        const updates = [...honest, bad, bad, bad];
        const runOne = (name: string, options: object) => {
          const s = createStrategy(
            { name, options },
            [{ name: 'w', shape: [dim], data: new Float32Array(dim) }],
            { backend },
          );
          s.configureRound(1);
          updates.forEach((u, i) =>
            s.accept({
              worker: i < 12 ? `honest${i}` : `attacker${i}`,
              samples: 10,
              tensors: [{ ...shapes[0]!, data: u }],
            }),
          );
          const r = s.aggregate();
          return {
            err: norm(flat(r.delta).map((x, i) => x - honestMean[i]!)) / norm(honestMean),
            included: r.included,
          };
        };
        const krum = runOne('krum', { f });
        expect(krum.included).to.have.length(1);
        expect(krum.included[0]).to.match(/^honest/);
        const multi = runOne('multi-krum', { f });
        expect(multi.included).to.have.length(12);
        expect(multi.included.every((w) => w.startsWith('honest'))).to.equal(true);
        expect(multi.err).to.be.below(1e-5);
        expect(runOne('median', {}).err).to.be.below(0.2);
        expect(runOne('trimmed-mean', { beta: 0.2 }).err).to.be.below(0.2);
        expect(runOne('fedavg', {}).err).to.be.above(0.8);
      });
    }
  });
}

describe('aggregation: wasm update store agrees with the JS reference', () => {
  for (const n of [1, 2, 3, 4, 5, 8, 15, 16, 17, 33]) {
    it(`n = ${n}: every rank window, distances and weighted means`, () => {
      const size = 1001;
      const wasm = new WasmUpdateStore(size);
      const js = new JsUpdateStore(size);
      for (let i = 0; i < n; i++) {
        const v = randomVector(100 + i, size);
        // Ties and repeated values across updates, as real quantised updates have.
        if (i % 3 === 2) v.set(randomVector(100, size).subarray(0, 300));
        for (const s of [wasm, js]) {
          s.stage([v.subarray(0, 500), v.subarray(500)], [0, 500]);
          s.commit();
        }
      }
      const windows: [number, number][] = [
        [0, n],
        [(n - 1) >> 1, ((n - 1) >> 1) + 1],
        [0, 1],
        [n - 1, n],
      ];
      if (n >= 3) windows.push([1, n - 1]);
      for (const [lo, hi] of windows)
        expect(maxAbsDiff(wasm.sortedMean(lo, hi), js.sortedMean(lo, hi)), `${lo}..${hi}`).to.be.below(2e-6);
      const dw = wasm.distances();
      const dj = js.distances();
      for (let i = 0; i < n * n; i++)
        expect(Math.abs(dw[i]! - dj[i]!)).to.be.below(1e-4 * Math.max(1, dj[i]!));
      const idx = Array.from({ length: n }, (_, i) => i).filter((i) => i % 2 === 0);
      const w = idx.map((i) => i + 1);
      expect(maxAbsDiff(wasm.weightedMean(idx, w), js.weightedMean(idx, w))).to.be.below(1e-5);
      wasm.scale(0, 0.5);
      js.scale(0, 0.5);
      expect(maxAbsDiff(wasm.read(0), js.updates[0]!)).to.equal(0);
    });
  }

  it('a round that outgrows wasm memory moves to the JS kernels with its updates', () => {
    const rows = [
      [1, 0, 0, 0],
      [5, 2, 0, -9],
      [2, 3, 1, 0],
    ];
    const s = createStrategy({ name: 'median', options: { clip: null } }, t4([0, 0, 0, 0]), {
      backend: 'wasm',
    });
    s.configureRound(1);
    s.accept({ worker: 'a', samples: 1, tensors: t4(rows[0]!) });
    s.accept({ worker: 'b', samples: 1, tensors: t4(rows[1]!) });
    (s as unknown as { store: { canGrow(): boolean } }).store.canGrow = () => false;
    s.accept({ worker: 'c', samples: 1, tensors: t4(rows[2]!) });
    expect(s.backend).to.equal('js');
    expect(Array.from(flat(s.aggregate().delta))).to.deep.equal([2, 2, 0, 0]);
  });

  it('median over a model as both backends', () => {
    const shapes = [
      { name: 'a', shape: [333] },
      { name: 'b', shape: [2, 5] },
    ];
    const out = BACKENDS.map((backend) => {
      const s = createStrategy(
        { name: 'median' },
        [
          { ...shapes[0]!, data: new Float32Array(333) },
          { ...shapes[1]!, data: new Float32Array(10) },
        ],
        { backend },
      );
      s.configureRound(1);
      for (let i = 0; i < 9; i++) {
        const v = randomVector(i, 343);
        s.accept({
          worker: `w${i}`,
          samples: 1,
          tensors: [
            { ...shapes[0]!, data: v.subarray(0, 333) },
            { ...shapes[1]!, data: v.subarray(333) },
          ],
        });
      }
      return flat(s.aggregate().weights);
    });
    expect(maxAbsDiff(out[0]!, out[1]!)).to.equal(0);
  });
});
