// Deterministic aggregation (issue 15): the same updates in the same order give the same bytes on the wasm and JS kernels, and again on a second run.
import { expect } from 'chai';
import {
  AggregationError,
  STRATEGY_NAMES,
  createStrategy,
  seededRng,
  type ClientUpdate,
  type NamedTensor,
  type RoundOptions,
  type StrategyName,
} from '../../aggregation/index.ts';
import { WasmStreamAccumulator } from '../../aggregation/kernels/simd.ts';
import { sumSquaresF32 } from '../../aggregation/kernels/reference.ts';
import { adaptive, momentum } from '../../aggregation/server.ts';

/** Tensors larger than one Σx² block (16,384 floats), with tails that are not a multiple of 16. */
const MODEL = [
  { name: 'w1', shape: [129, 257] },
  { name: 'b1', shape: [3] },
  { name: 'w2', shape: [16, 33] },
  { name: 'b2', shape: [17] },
];
const MODEL_SIZE = MODEL.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
const WORKERS = 7;
const ROUNDS = 3;

function tensors(seed: number, scale: number, stream = 0): NamedTensor[] {
  const rng = seededRng(seed, stream);
  return MODEL.map((s) => {
    const data = new Float32Array(s.shape.reduce((a, b) => a * b, 1));
    rng.gaussian(data, scale);
    // Magnitudes over many binades, so any change in the order of float32 operations shows in the bytes.
    for (let i = 0; i < data.length; i += 7) data[i] = data[i]! * 2 ** ((rng.u32() % 24) - 12);
    return { name: s.name, shape: [...s.shape], data };
  });
}

const SCALES = [1e-3, 0.02, 0.5, 3, 0.01, 40, 0.2];

/** Each round's updates: varied scales and sample counts; round 2 has a NaN (rejected), round 3 one of 1e18 (its Σx² overflows float32). */
function roundsOfUpdates(): ClientUpdate[][] {
  return Array.from({ length: ROUNDS }, (_, r) =>
    Array.from({ length: WORKERS }, (_, k) => {
      const t = tensors(1000 * r + k, SCALES[(k + r) % SCALES.length]!, r);
      if (r === 1 && k === 2) t[0]!.data[5000] = NaN;
      if (r === 2 && k === 4) for (const x of t) x.data.fill(1e18);
      return { worker: `w${k}`, samples: 1 + ((k * 37 + r * 11) % 90), tensors: t };
    }),
  );
}

function bytesOf(ts: NamedTensor[]): Buffer {
  return Buffer.concat(ts.map((t) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)));
}

interface Run {
  weights: Buffer[];
  deltas: Buffer[];
  accepts: string[];
  metrics: Record<string, number>[];
}

function run(
  spec: object,
  backend: 'wasm' | 'js',
  rounds: ClientUpdate[][],
  roundOptions: (r: number) => RoundOptions = () => ({}),
): Run {
  const s = createStrategy(spec, tensors(99, 0.1), { backend });
  expect(s.backend).to.equal(backend);
  const out: Run = { weights: [], deltas: [], accepts: [], metrics: [] };
  rounds.forEach((updates, r) => {
    s.configureRound(r, {}, roundOptions(r));
    for (const u of updates) {
      const a = s.accept(u);
      out.accepts.push(a.ok ? `ok ${a.norm} ${a.clipped}` : a.code);
    }
    const agg = s.aggregate();
    // The result views the strategy's buffers: copy the bytes now.
    out.weights.push(bytesOf(agg.weights));
    out.deltas.push(bytesOf(agg.delta));
    out.metrics.push(agg.metrics);
  });
  s.dispose();
  return out;
}

function expectSame(a: Run, b: Run, what: string): void {
  expect(a.accepts, `${what}: accept results`).to.deep.equal(b.accepts);
  for (let r = 0; r < a.weights.length; r++) {
    expect(a.deltas[r]!.equals(b.deltas[r]!), `${what}: delta bytes of round ${r}`).to.equal(true);
    expect(a.weights[r]!.equals(b.weights[r]!), `${what}: weight bytes of round ${r}`).to.equal(true);
  }
  expect(a.metrics, `${what}: metrics`).to.deep.equal(b.metrics);
}

const CLIPS: [string, object][] = [
  ['no clipping', { clip: null }],
  ['fixed clipping and a norm bound', { clip: { mode: 'fixed', norm: 3 }, maxNorm: 1e7 }],
  ['adaptive clipping', { clip: { mode: 'adaptive', multiplier: 1.5, initial: 5 } }],
];

function specsFor(name: StrategyName): [string, object][] {
  const own: Partial<Record<StrategyName, object>> = {
    'trimmed-mean': { beta: 0.2 },
    krum: { f: 1 },
    'multi-krum': { f: 1, m: 3 },
  };
  if (name === 'dp-fedavg')
    return [
      ['seeded noise', { name, options: { clipNorm: 2, noiseMultiplier: 0.5, samplingRate: 0.1, seed: 7 } }],
    ];
  return CLIPS.map(([label, options]) => [label, { name, options: { ...own[name], ...options } }]);
}

describe('aggregation: deterministic aggregation (wasm and JS kernels give the same bytes)', function () {
  this.timeout(120000);
  const rounds = roundsOfUpdates();

  for (const name of STRATEGY_NAMES) {
    for (const [label, spec] of specsFor(name)) {
      it(`${name}, ${label}: wasm = js = a second run, bit for bit, over ${ROUNDS} rounds`, () => {
        const wasm = run(spec, 'wasm', rounds);
        const js = run(spec, 'js', rounds);
        expectSame(wasm, js, `${name} wasm vs js`);
        expectSame(wasm, run(spec, 'wasm', rounds), `${name} wasm twice`);
        expectSame(js, run(spec, 'js', rounds), `${name} js twice`);
        // The rounds exercise what they claim: a rejection, clipping where there is a bound.
        expect(wasm.accepts).to.include('E_UPDATE_NOT_FINITE');
        if (label !== 'no clipping' || name === 'dp-fedavg')
          expect(wasm.metrics.some((m) => m.clipped! > 0)).to.equal(true);
      });
    }
  }

  it('FedAvg follows the documented arithmetic (an independent float32 re-implementation, byte for byte)', () => {
    const f = Math.fround;
    const updates = rounds[0]!.filter((u) => u.tensors.every((t) => t.data.every(Number.isFinite)));
    const flatOf = (ts: NamedTensor[]) => Float32Array.from(ts.flatMap((t) => [...t.data]));
    /** Σx² per the docs: per tensor, per 16,384-float block, 8 float32 lanes over the multiple of 16, then the tail. */
    const sumsq = (ts: NamedTensor[]) => {
      let ss = 0;
      for (const { data } of ts) {
        for (let o = 0; o < data.length; o += 16384) {
          const len = Math.min(16384, data.length - o);
          const vec = len - (len % 16);
          const lanes = new Float32Array(8);
          for (let i = 0; i < vec; i++) lanes[i % 8] = lanes[i % 8]! + f(data[o + i]! * data[o + i]!);
          if (vec > 0) ss += [0, 1, 2, 3].reduce((acc, l) => acc + f(lanes[l]! + lanes[l + 4]!), 0);
          for (let i = vec; i < len; i++) ss += data[o + i]! * data[o + i]!;
        }
      }
      return ss;
    };
    const x = flatOf(tensors(99, 0.1));
    const sum = new Float32Array(x.length);
    let total = 0;
    for (const u of updates) {
      const v = flatOf(u.tensors);
      for (let i = 0; i < v.length; i++) sum[i] = sum[i]! + f(f(u.samples) * v[i]!);
      total += u.samples;
    }
    for (let i = 0; i < x.length; i++) x[i] = x[i]! + f(f(1) * f(sum[i]! / f(total)));
    for (const backend of ['wasm', 'js'] as const) {
      const got = run({ name: 'fedavg', options: { clip: null } }, backend, [updates]);
      expect(got.accepts).to.deep.equal(updates.map((u) => `ok ${Math.sqrt(sumsq(u.tensors))} false`));
      expect(got.weights[0]!.equals(Buffer.from(x.buffer)), backend).to.equal(true);
    }
  });

  it('the stateful server kernels match server.step on edge values: ±0, v = d² (sign 0), overflow to Infinity, NaN', () => {
    const n = 64 + 5; // four 16-float groups and a tail the JS step does
    const x = Float32Array.from({ length: n }, (_, i) => i / 7);
    const d = Float32Array.from({ length: n }, (_, i) => [0, -0, 1e-3, -2, 3e19, 1e-30, 0.5, 7][i % 8]!);
    const m = Float32Array.from({ length: n }, (_, i) => (i % 3) - 1);
    const v = Float32Array.from({ length: n }, (_, i) => [0, 1e-6, 1e-6, 4, 9e38, 0, 0.25, 1][i % 8]!);
    const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    for (const kind of ['momentum', 'adam', 'yogi', 'adagrad'] as const) {
      const make = () =>
        kind === 'momentum'
          ? momentum(0.7, 0.9, n)
          : adaptive(kind, { serverLr: 0.01, beta1: 0.9, beta2: 0.99, tau: 1e-3 }, n);
      const state = () => (kind === 'momentum' ? [v.slice()] : [m.slice(), v.slice()]);
      const js = make();
      js.moveState(state());
      const xj = x.slice();
      const dj = new Float32Array(n);
      for (let i = 0; i < n; i++) dj[i] = 0 + d[i]!; // the accumulator's sum of one update: +0 + 1·d
      js.step(xj, dj, 3);
      const wasm = make();
      const acc = new WasmStreamAccumulator(n, wasm.state.length);
      const xw = acc.holdWeights(x.slice());
      wasm.moveState(acc.holdState(state()));
      acc.stage([d], [0], 1);
      acc.commit();
      const dn = acc.serverStep(wasm, 3);
      expect(dn, kind).to.not.equal(null);
      expect(bytes(xw).equals(bytes(xj)), `${kind} weights`).to.equal(true);
      js.state.forEach((a, i) =>
        expect(bytes(wasm.state[i]!).equals(bytes(a)), `${kind} state ${i}`).to.equal(true),
      );
      expect(Object.is(dn, sumSquaresF32([dj])), `${kind} Σd²`).to.equal(true);
    }
  });

  it('the comparison can fail: the same updates in another order give other bytes', () => {
    const spec = { name: 'fedavg', options: { clip: null } };
    const a = run(spec, 'wasm', rounds);
    const b = run(
      spec,
      'wasm',
      rounds.map((u) => [...u].reverse()),
    );
    expect(a.weights[0]!.equals(b.weights[0]!)).to.equal(false);
  });

  it('updates decoded into the strategy inputBuffer give the same bytes as plain arrays', () => {
    for (const name of ['fedavg', 'dp-fedavg', 'median'] as const) {
      for (const [label, options] of CLIPS) {
        const spec =
          name === 'dp-fedavg'
            ? { name, options: { clipNorm: 2, noiseMultiplier: 0.5, samplingRate: 0.1, seed: 7 } }
            : { name, options };
        for (const backend of ['wasm', 'js'] as const) {
          const plain = run(spec, backend, rounds);
          const s = createStrategy(spec, tensors(99, 0.1), { backend });
          const buf = s.inputBuffer();
          expect(buf).to.have.length(MODEL_SIZE);
          expect(s.inputBuffer()).to.equal(buf);
          const viaInput: Run = { weights: [], deltas: [], accepts: [], metrics: [] };
          rounds.forEach((updates, r) => {
            s.configureRound(r);
            for (const u of updates) {
              // What decodeUpdate(bytes, { out: buf, expect }) leaves: the tensors as consecutive views of buf.
              let o = 0;
              const views = u.tensors.map((t) => {
                buf.set(t.data, o);
                o += t.data.length;
                return { ...t, data: buf.subarray(o - t.data.length, o) };
              });
              const a = s.accept({ ...u, tensors: views });
              viaInput.accepts.push(a.ok ? `ok ${a.norm} ${a.clipped}` : a.code);
            }
            const agg = s.aggregate();
            viaInput.weights.push(bytesOf(agg.weights));
            viaInput.deltas.push(bytesOf(agg.delta));
            viaInput.metrics.push(agg.metrics);
          });
          s.dispose();
          expectSame(viaInput, plain, `${name} ${label} ${backend} via inputBuffer`);
        }
      }
    }
  });

  it('many updates (past the generated sorting networks) still agree', () => {
    const many = [
      Array.from({ length: 130 }, (_, k) => ({
        worker: `w${k}`,
        samples: 1 + (k % 5),
        tensors: tensors(5000 + k, SCALES[k % SCALES.length]!),
      })),
    ];
    for (const spec of [{ name: 'median' }, { name: 'trimmed-mean', options: { beta: 0.3 } }]) {
      expectSame(run(spec, 'wasm', many), run(spec, 'js', many), spec.name);
    }
  });

  describe('the round noiseSeed (dp-fedavg)', () => {
    const spec = { name: 'dp-fedavg', options: { clipNorm: 2, noiseMultiplier: 0.5, samplingRate: 0.1 } };
    const hash = (r: number) => `0x${(r + 1).toString(16).padStart(2, '0').repeat(32)}`;

    it('draws the noise from the round noiseSeed: same seed, same bytes on either kernel', () => {
      const wasm = run(spec, 'wasm', rounds, (r) => ({ noiseSeed: hash(r) }));
      const js = run(spec, 'js', rounds, (r) => ({ noiseSeed: hash(r) }));
      expectSame(wasm, js, 'noiseSeed wasm vs js');
      const other = run(spec, 'wasm', rounds, (r) => ({ noiseSeed: hash(r + 10) }));
      expect(other.weights[0]!.equals(wasm.weights[0]!)).to.equal(false);
      const numeric = run(spec, 'js', rounds, (r) => ({ noiseSeed: 42 + r }));
      expectSame(
        numeric,
        run(spec, 'wasm', rounds, (r) => ({ noiseSeed: 42 + r })),
        'numeric noiseSeed',
      );
    });

    it('without any seed the noise is fresh each run', () => {
      const a = run(spec, 'wasm', rounds.slice(0, 1));
      const b = run(spec, 'wasm', rounds.slice(0, 1));
      expect(a.weights[0]!.equals(b.weights[0]!)).to.equal(false);
    });

    it('RoundConfig carries the seed; a malformed one is E_ROUND', () => {
      const s = createStrategy(spec, tensors(99, 0.1));
      expect(s.configureRound(0, {}, { noiseSeed: '0xABcd' }).noiseSeed).to.equal('0xabcd');
      s.accept({ worker: 'a', samples: 1, tensors: tensors(1, 0.1) });
      s.aggregate();
      for (const bad of ['abcd', '0x123', '', -1, 2 ** 32, 1.5, `0x${'00'.repeat(65)}`]) {
        expect(() => s.configureRound(1, {}, { noiseSeed: bad as never }), String(bad))
          .to.throw(AggregationError)
          .with.property('code', 'E_ROUND');
      }
    });
  });
});
