import { expect } from 'chai';
import {
  AggregationError,
  RdpAccountant,
  createStrategy,
  epsilonFromRdp,
  rdpSampledGaussian,
  seededRng,
} from '../../aggregation/index.ts';
import { BACKENDS, SIZE, flat, maxAbsDiff, norm, randomVector, tensorsFrom } from './helpers.ts';

/**
 * An independent check of the binomial formula: A_alpha = E_{z~N(0,s²)}[((1-q) + q·exp((2z-1)/(2s²)))^alpha]
 * (Mironov et al. 2019, Definition of A_alpha), by composite Simpson in log space over a range holding the mass.
 */
function rdpByIntegration(q: number, sigma: number, alpha: number): number {
  const lo = -30 * sigma;
  const hi = alpha + 30 * sigma;
  const steps = 400000;
  const h = (hi - lo) / steps;
  const logf = (z: number) =>
    -(z * z) / (2 * sigma * sigma) -
    Math.log(sigma * Math.sqrt(2 * Math.PI)) +
    alpha * Math.log(1 - q + q * Math.exp((2 * z - 1) / (2 * sigma * sigma)));
  const logs = new Float64Array(steps + 1);
  let max = -Infinity;
  for (let i = 0; i <= steps; i++) {
    logs[i] = logf(lo + i * h);
    max = Math.max(max, logs[i]!);
  }
  let s = 0;
  for (let i = 0; i <= steps; i++)
    s += (i === 0 || i === steps ? 1 : i % 2 ? 4 : 2) * Math.exp(logs[i]! - max);
  return (Math.log((s * h) / 3) + max) / (alpha - 1);
}

describe('aggregation: RDP accountant', () => {
  it('q = 1 is the Gaussian mechanism: alpha / (2 sigma²) (closed form)', () => {
    for (const sigma of [0.5, 1, 3])
      for (const a of [2, 7, 64])
        expect(rdpSampledGaussian(1, sigma, a)).to.be.closeTo(a / (2 * sigma * sigma), 1e-12);
  });

  it('the binomial expansion matches numerical integration of A_alpha', () => {
    for (const [q, sigma] of [
      [0.01, 1.1],
      [0.1, 0.8],
      [0.5, 4],
      [0.9, 2],
    ] as const) {
      for (const a of [2, 3, 8, 32]) {
        const want = rdpByIntegration(q, sigma, a);
        expect(rdpSampledGaussian(q, sigma, a), `q=${q} sigma=${sigma} alpha=${a}`).to.be.closeTo(
          want,
          1e-7 * Math.max(1, want),
        );
      }
    }
  });

  it('matches published values', () => {
    // Abadi et al. 2016, "Deep Learning with Differential Privacy", Section 3.1: q = 0.01, sigma = 4, T = 10000,
    // delta = 1e-5 gives epsilon ≈ 1.26 with the moments accountant (integer moments, classic conversion).
    const abadi = new RdpAccountant(
      0.01,
      4,
      Array.from({ length: 31 }, (_, i) => i + 2),
    );
    abadi.step(10000);
    expect(abadi.epsilon(1e-5, 'classic').epsilon).to.be.closeTo(1.26, 0.005);
    // TensorFlow Privacy's MNIST DP-SGD tutorial: N = 60000, batch 256, noise multiplier 1.1, 60 epochs
    // (ceil(60·60000/256) = 14063 steps), delta = 1e-5 reports epsilon = 3.01 (classic conversion).
    const tfp = new RdpAccountant(256 / 60000, 1.1);
    tfp.step(Math.ceil((60 * 60000) / 256));
    expect(tfp.epsilon(1e-5, 'classic').epsilon).to.be.closeTo(3.01, 0.005);
    // The improved conversion (Canonne et al. 2020) is never looser.
    expect(tfp.epsilon(1e-5).epsilon).to.be.below(tfp.epsilon(1e-5, 'classic').epsilon);
  });

  it('composes additively and epsilon grows with steps, shrinks with noise', () => {
    const a = new RdpAccountant(0.05, 1.2);
    a.step(10);
    const e10 = a.epsilon(1e-6).epsilon;
    a.step(90);
    expect(a.epsilon(1e-6).epsilon).to.be.above(e10);
    expect(a.rdp()[0]).to.be.closeTo(100 * rdpSampledGaussian(0.05, 1.2, 2), 1e-12);
    const quieter = new RdpAccountant(0.05, 2.4);
    quieter.step(100);
    expect(quieter.epsilon(1e-6).epsilon).to.be.below(a.epsilon(1e-6).epsilon);
  });

  it('classic conversion by hand at one order', () => {
    expect(epsilonFromRdp([5], [0.5], 1e-5, 'classic').epsilon).to.be.closeTo(0.5 + Math.log(1e5) / 4, 1e-12);
    expect(epsilonFromRdp([5], [0.5], 1e-5).epsilon).to.be.closeTo(
      0.5 + Math.log1p(-1 / 5) - Math.log(5e-5) / 4,
      1e-12,
    );
  });

  it('rejects bad parameters with E_ACCOUNTANT', () => {
    for (const fn of [
      () => rdpSampledGaussian(0, 1, 2),
      () => rdpSampledGaussian(0.1, 0, 2),
      () => rdpSampledGaussian(0.1, 1, 1.5),
      () => epsilonFromRdp([2], [1], 0),
    ]) {
      expect(fn).to.throw(AggregationError).with.property('code', 'E_ACCOUNTANT');
    }
  });
});

describe('aggregation: seeded RNG', () => {
  it('is reproducible and N(0, std²)', () => {
    const a = new Float64Array(200000);
    const b = new Float64Array(200000);
    seededRng(5, 1).gaussian(a, 2);
    seededRng(5, 1).gaussian(b, 2);
    expect(maxAbsDiff(a, b)).to.equal(0);
    const other = new Float64Array(10);
    seededRng(5, 2).gaussian(other, 2);
    expect(other[0]).to.not.equal(a[0]);
    const mean = a.reduce((s, x) => s + x, 0) / a.length;
    const sd = Math.sqrt(a.reduce((s, x) => s + (x - mean) ** 2, 0) / a.length);
    expect(mean).to.be.closeTo(0, 0.02);
    expect(sd).to.be.closeTo(2, 0.02);
  });
});

for (const backend of BACKENDS) {
  describe(`aggregation: DP-FedAvg (${backend})`, () => {
    const W0 = randomVector(9);
    const options = { clipNorm: 1, noiseMultiplier: 1.1, samplingRate: 0.02, seed: 1234, expectedClients: 4 };

    it('clips each update, sums unweighted, adds seeded Gaussian noise of std z·C, divides by the expected clients', () => {
      const s = createStrategy({ name: 'dp-fedavg', options }, tensorsFrom(W0), { backend });
      expect(s.configureRound(7).clipNorm).to.equal(1);
      const ups = [randomVector(1, SIZE, 0.01), randomVector(2), randomVector(3, SIZE, 3)];
      ups.forEach((u, i) => s.accept({ worker: `w${i}`, samples: 100 * (i + 1), tensors: tensorsFrom(u) }));
      const res = s.aggregate();
      const noise = new Float32Array(SIZE);
      seededRng(1234, 7).gaussian(noise, 1.1);
      const clipped = ups.map((u) => u.map((x) => x * Math.min(1, 1 / norm(u))));
      const want = W0.map((w, i) => w + (clipped.reduce((a, c) => a + c[i]!, 0) + noise[i]!) / 4);
      expect(maxAbsDiff(flat(res.weights), want)).to.be.below(1e-5);
      expect(res.metrics).to.include({ clipped: 2, noiseStd: 1.1, dpRounds: 1, dpDelta: 1e-5 });
      const acc = new RdpAccountant(0.02, 1.1);
      acc.step(1);
      expect(res.metrics.epsilon).to.be.closeTo(acc.epsilon(1e-5).epsilon, 1e-12);
    });

    it('reports the epsilon spent so far after each round', () => {
      const s = createStrategy({ name: 'dp-fedavg', options }, tensorsFrom(W0), { backend });
      const eps: number[] = [];
      for (let r = 1; r <= 3; r++) {
        s.configureRound(r);
        s.accept({ worker: 'a', samples: 1, tensors: tensorsFrom(randomVector(r)) });
        eps.push(s.aggregate().metrics.epsilon!);
      }
      const acc = new RdpAccountant(0.02, 1.1);
      acc.step(3);
      expect(eps[2]).to.be.closeTo(acc.epsilon(1e-5).epsilon, 1e-12);
      expect(eps[0]).to.be.below(eps[1]!);
    });

    it('without a seed draws fresh noise of the right scale from the CSPRNG', () => {
      const shapes = [{ name: 'w', shape: [40000] }];
      const zero = new Float32Array(40000);
      const s = createStrategy(
        { name: 'dp-fedavg', options: { clipNorm: 2, noiseMultiplier: 1.5, samplingRate: 0.1 } },
        [{ ...shapes[0]!, data: zero }],
        { backend },
      );
      const draws = [1, 2].map((r) => {
        s.configureRound(r);
        s.accept({ worker: 'a', samples: 1, tensors: [{ ...shapes[0]!, data: zero }] });
        return flat(s.aggregate().delta);
      });
      const sd = Math.sqrt(draws[0]!.reduce((a, x) => a + x * x, 0) / draws[0]!.length);
      expect(sd).to.be.closeTo(3, 0.1);
      expect(maxAbsDiff(draws[0]!, draws[1]!)).to.be.above(0);
    });
  });
}
