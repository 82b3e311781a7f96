import { expect } from 'chai';
import {
  AggregationError,
  OPTION_KEYS,
  STRATEGY_NAMES,
  parseStrategySpec,
  specToJSON,
} from '../../aggregation/index.ts';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(AggregationError);
    return (e as AggregationError).code;
  }
  throw new Error('expected a throw');
}

describe('aggregation: strategy spec', () => {
  it('fills defaults per strategy', () => {
    expect(parseStrategySpec({ name: 'fedavg' }).options.serverLr).to.equal(1);
    const adam = parseStrategySpec({ name: 'fedadam', options: { tau: 1e-2 } });
    expect(adam.options).to.include({ serverLr: 0.01, beta1: 0.9, beta2: 0.99, tau: 1e-2 });
    expect(parseStrategySpec({ name: 'fedadagrad' }).options.beta1).to.equal(0);
    expect(parseStrategySpec({ name: 'trimmed-mean' }).options.beta).to.equal(0.1);
  });

  it('round-trips every strategy through its JSON form', () => {
    const required: Record<string, object> = {
      krum: { f: 1 },
      'multi-krum': { f: 1, m: 3 },
      'dp-fedavg': { clipNorm: 1, noiseMultiplier: 1.1, samplingRate: 0.01, seed: 7 },
    };
    for (const name of STRATEGY_NAMES) {
      const spec = parseStrategySpec({ name, options: required[name] ?? {} });
      const json = JSON.parse(JSON.stringify(specToJSON(spec)));
      expect(Object.keys(json.options)).to.have.members([...OPTION_KEYS[name]]);
      expect(parseStrategySpec(json)).to.deep.equal(spec);
    }
  });

  it('parses clip specs', () => {
    expect(
      parseStrategySpec({ name: 'median', options: { clip: { mode: 'fixed', norm: 2 } } }).options.clip,
    ).to.deep.equal({
      mode: 'fixed',
      norm: 2,
    });
    expect(
      parseStrategySpec({ name: 'fedavg', options: { clip: { mode: 'adaptive' } } }).options.clip,
    ).to.deep.equal({
      mode: 'adaptive',
      multiplier: 1,
      initial: null,
    });
  });

  it('rejects bad specs with E_STRATEGY_SPEC', () => {
    const bad: unknown[] = [
      null,
      [],
      'fedavg',
      { name: 'fedsgd' },
      { name: 'fedavg', extra: 1 },
      { name: 'fedavg', options: [] },
      { name: 'fedavg', options: { momentum: 0.9 } },
      { name: 'fedavg', options: { serverLr: 0 } },
      { name: 'fedavg', options: { serverLr: '1' } },
      { name: 'fedavg', options: { maxNorm: -1 } },
      { name: 'fedavg', options: { clip: { mode: 'fixed' } } },
      { name: 'fedavg', options: { clip: { mode: 'sometimes', norm: 1 } } },
      { name: 'fedavg', options: { clip: { mode: 'fixed', norm: 1, x: 2 } } },
      { name: 'fedavgm', options: { momentum: 1 } },
      { name: 'trimmed-mean', options: { beta: 0.5 } },
      { name: 'krum' },
      { name: 'krum', options: { f: 1.5 } },
      { name: 'multi-krum', options: { f: 1, m: 0 } },
      { name: 'dp-fedavg', options: { clipNorm: 1, noiseMultiplier: 1 } },
      { name: 'dp-fedavg', options: { clipNorm: 1, noiseMultiplier: 1, samplingRate: 2 } },
      { name: 'dp-fedavg', options: { clipNorm: 1, noiseMultiplier: 1, samplingRate: 0.1, clip: null } },
      { name: 'fedavg', options: { minUpdates: 0 } },
      { name: 'fedavg', options: { serverLr: Infinity } },
    ];
    for (const spec of bad)
      expect(
        code(() => parseStrategySpec(spec)),
        JSON.stringify(spec),
      ).to.equal('E_STRATEGY_SPEC');
  });
});
