// A round's aggregate is a pure function of its inputs: the same bytes whatever order the updates arrived in and
// whichever kernels (WebAssembly SIMD or plain JS) aggregate them, for every strategy, from a restored state too.
import { expect } from 'chai';
import { sha256Hex } from '../../checkpoints/index.ts';
import { encodeUpdate, STRATEGY_NAMES, type NamedTensor } from '../../aggregation/index.ts';
import {
  createModel,
  disposeModel,
  getWeights,
  initBackend,
  modelConfig,
  trainableNames,
} from '../../model/index.ts';
import { deriveAggregate, proposalStrategy, type PublishedUpdate } from '../../verify/index.ts';

const OPTIONS: Record<string, Record<string, unknown>> = {
  'dp-fedavg': { clipNorm: 1, noiseMultiplier: 0.5, samplingRate: 0.5, expectedClients: 5 },
  krum: { f: 1 },
  'multi-krum': { f: 1, m: 3 },
  'trimmed-mean': { beta: 0.2 },
};

function updatesFor(weights: NamedTensor[], n: number): PublishedUpdate[] {
  let seed = 99;
  const next = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31 - 0.5;
  };
  return Array.from({ length: n }, (_, k) => ({
    account: `worker-${String.fromCharCode(101 - k)}`,
    samples: 8 + k,
    payload: encodeUpdate(
      weights.map((w) => ({ ...w, data: Float32Array.from(w.data, () => next() * 1e-2 * (k + 1)) })),
      { codec: 'dense' },
    ),
  }));
}

describe('verify: deterministic aggregation', function () {
  this.timeout(120_000);
  before(() => initBackend({ backend: 'auto' }));

  for (const name of STRATEGY_NAMES) {
    it(`${name}: the same bytes in any arrival order, on wasm and JS kernels, two rounds running`, () => {
      const model = createModel(modelConfig('tiny'), { seed: 1 });
      try {
        const weights = getWeights(model, { names: trainableNames(model) });
        const updates = updatesFor(weights, 5);
        const spec = { name, options: OPTIONS[name] ?? {} };
        const run = (order: PublishedUpdate[], backend: 'wasm' | 'js') => {
          const { strategy, maxValues } = proposalStrategy(spec, model, { noiseSeed: 5, backend });
          const hashes: string[] = [];
          for (const round of [0, 1]) {
            const d = deriveAggregate({
              strategy,
              round,
              fit: {},
              codec: 'dense',
              maxValues,
              updates: order,
            });
            expect(d.refused, JSON.stringify(d.refused)).to.deep.equal([]);
            hashes.push(
              sha256Hex(
                new Uint8Array(
                  d.result.weights.flatMap((t) => [
                    ...new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
                  ]),
                ),
              ),
              d.stateHash,
            );
          }
          strategy.dispose();
          return hashes;
        };
        const reference = run(updates, 'wasm');
        expect(run([...updates].reverse(), 'wasm')).to.deep.equal(reference);
        expect(run([updates[2]!, updates[0]!, updates[4]!, updates[1]!, updates[3]!], 'js')).to.deep.equal(
          reference,
        );
      } finally {
        disposeModel(model);
      }
    });
  }
});
