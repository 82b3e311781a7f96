// A round's aggregate is a pure function of its inputs: the same bytes whatever order the updates arrived in and
// whichever kernels (WebAssembly SIMD or plain JS) aggregate them, for every strategy, from a restored state too.
import { expect } from 'chai';
import { sha256Hex } from '../../checkpoints/index.ts';
import { decodeUpdate, encodeUpdate, STRATEGY_NAMES, type NamedTensor } from '../../aggregation/index.ts';
import {
  addLora,
  createModel,
  disposeModel,
  getWeights,
  initBackend,
  modelConfig,
  trainableNames,
  withClassifierHead,
} from '../../model/index.ts';
import { deriveAggregate, leafOrder, proposalStrategy, type PublishedUpdate } from '../../verify/index.ts';

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

  it("top-k rounds are folded from their k values with the dense fold's bytes: a LoRA + classifier-head model whose payloads list its tensors in another order", () => {
    const lm = createModel(modelConfig('tiny'), { seed: 1 });
    const headed = withClassifierHead(lm, modelConfig('tiny', { kind: 'classifier', numLabels: 3 }), {
      seed: 2,
    });
    const model = addLora(headed, { rank: 4, alpha: 8, targets: ['attn.c_attn', 'mlp.c_proj'] }, { seed: 3 });
    try {
      const weights = getWeights(model, { names: trainableNames(model) });
      const layout = weights.map((w) => w.name);
      expect(layout.some((n) => n.startsWith('cls.'))).to.equal(true);
      for (const codec of ['topk', 'topk-int8'] as const) {
        // The worker's tensors in another order than the strategy's layout: reversed.
        const updates = updatesFor(weights, 5).map((u, k) => {
          const t = decodeUpdate(u.payload, { codec: 'dense' }).reverse();
          return { ...u, payload: encodeUpdate(t, { codec, fraction: [0.01, 0.2, 1, 0.05, 0.5][k]! }) };
        });
        expect(decodeUpdate(updates[0]!.payload, { codec }).map((t) => t.name)).to.deep.equal(
          [...layout].reverse(),
        );
        for (const name of ['fedavg', 'fedadam', 'dp-fedavg', 'median']) {
          const spec = { name, options: OPTIONS[name] ?? { clip: { mode: 'fixed', norm: 0.05 } } };
          const hashesOf = (ws: NamedTensor[], state: Uint8Array) => [
            sha256Hex(
              new Uint8Array(
                ws.flatMap((t) => [...new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)]),
              ),
            ),
            sha256Hex(state),
          ];
          // The dense fold, as deriveAggregate ran it before: every payload decoded into params-sized arrays.
          const { strategy: d, maxValues } = proposalStrategy(spec, model, { noiseSeed: 5, backend: 'js' });
          d.configureRound(0, {});
          for (const u of leafOrder(updates)) {
            const verdict = d.accept({
              worker: u.account,
              samples: u.samples,
              tensors: decodeUpdate(u.payload, { codec }),
            });
            expect(verdict.ok, `${codec} ${name} dense`).to.equal(true);
          }
          const dense = hashesOf(d.aggregate().weights, d.exportState());
          d.dispose();
          for (const backend of ['wasm', 'js'] as const) {
            const { strategy } = proposalStrategy(spec, model, { noiseSeed: 5, backend });
            const got = deriveAggregate({
              strategy,
              round: 0,
              fit: {},
              codec,
              maxValues,
              updates: [...updates].reverse(),
            });
            expect(got.refused).to.deep.equal([]);
            expect(hashesOf(got.result.weights, got.state), `${codec} ${name} ${backend}`).to.deep.equal(
              dense,
            );
            if (name !== 'dp-fedavg' && name !== 'median')
              expect(got.result.metrics.clipped, `${codec} ${name}`).to.be.greaterThan(0);
            strategy.dispose();
          }
        }
      }
    } finally {
      for (const m of [lm, headed, model]) disposeModel(m);
    }
  });
});
