// Aggregation throughput: streaming FedAvg input GB/s beside a memory copy, robust rules beside a per-coordinate JS sort, codec MB/s and ratios.
import { performance } from 'node:perf_hooks';
import {
  createStrategy,
  encodeUpdate,
  decodeUpdate,
  compressionRatio,
  createTopKState,
  CODECS,
  seededRng,
} from '../aggregation/index.ts';
import type { NamedTensor, Strategy } from '../aggregation/index.ts';
// The JS reference store is what the wasm kernels are measured against; it is deliberately not public.
// eslint-disable-next-line fedtune/boundaries
import { JsUpdateStore } from '../aggregation/kernels/reference.ts';
import type { Bench } from './lib.ts';
import { memcpyGBs, timeIt, withRatio } from './lib.ts';

function randomTensors(size: number, seed: number): NamedTensor[] {
  const data = new Float32Array(size);
  seededRng(seed).gaussian(data, 0.01);
  // One big matrix and a small bias, as a model has.
  return [
    { name: 'w', shape: [size - 1000], data: data.subarray(0, size - 1000) },
    { name: 'b', shape: [1000], data: data.subarray(size - 1000) },
  ];
}

const bench: Bench = async (ctx) => {
  const workers = 16;
  const big = ctx.quick ? 4_000_000 : 10_000_000;
  const robustSize = ctx.quick ? 250_000 : 1_000_000;
  const codecSize = ctx.quick ? 1_000_000 : 4_000_000;

  // Four distinct updates cycled over 16 workers: each is 40 MB, far beyond cache, so every accept reads memory.
  const updates = [0, 1, 2, 3].map((s) => randomTensors(big, s));
  const weights = randomTensors(big, 99);
  for (const backend of ['wasm', 'js'] as const) {
    const s = createStrategy({ name: 'fedavg' }, weights, { backend });
    let round = 0;
    let acceptSeconds = 0;
    const seconds = await timeIt(
      () => {
        s.configureRound(++round);
        const t0 = performance.now();
        for (let w = 0; w < workers; w++)
          s.accept({ worker: `w${w}`, samples: 1 + w, tensors: updates[w % 4]! });
        acceptSeconds = (performance.now() - t0) / 1000;
        s.aggregate();
      },
      { minRuns: ctx.quick ? 2 : 4, minMs: 0 },
    );
    const ref = await memcpyGBs();
    const bytes = workers * big * 4;
    ctx.report(
      withRatio(
        {
          name: `fedavg accept ${backend}`,
          value: bytes / acceptSeconds / 1e9,
          unit: 'GB/s',
          note: `${workers} x ${big / 1e6}M floats, input bytes read; ref: memcpy in this process`,
        },
        ref,
      ),
    );
    ctx.report(
      withRatio(
        {
          name: `fedavg round ${backend}`,
          value: bytes / seconds / 1e9,
          unit: 'GB/s',
          note: `accepts + aggregate (mean, server step, new weights)`,
        },
        ref,
      ),
    );
    s.dispose();
  }

  // Robust rules: the aggregate step over 16 stored updates, beside the per-coordinate JS sort (the JS reference store).
  const rUpdates = Array.from({ length: workers }, (_, w) => randomTensors(robustSize, 100 + w));
  const rWeights = randomTensors(robustSize, 7);
  const ref = new JsUpdateStore(robustSize);
  for (const u of rUpdates) {
    ref.stage(
      u.map((t) => t.data),
      [0, robustSize - 1000],
    );
    ref.commit();
  }
  const sortSeconds = await timeIt(() => ref.sortedMean(7, 9), { minRuns: 1, minMs: 0 });
  ctx.report({
    name: 'per-coordinate JS sort (reference)',
    value: (sortSeconds / robustSize) * 1e6,
    unit: 'us/coord',
    note: `${workers} x ${robustSize / 1e6}M`,
  });
  const rules: [string, object][] = [
    ['median', {}],
    ['trimmed-mean', { beta: 0.2 }],
    ['krum', { f: 3 }],
    ['multi-krum', { f: 3 }],
  ];
  for (const [name, options] of rules) {
    for (const backend of ['wasm', 'js'] as const) {
      if (backend === 'js' && name !== 'krum') continue;
      const s: Strategy = createStrategy({ name, options }, rWeights, { backend });
      let round = 0;
      let aggSeconds = Infinity;
      await timeIt(
        () => {
          s.configureRound(++round);
          rUpdates.forEach((u, w) => s.accept({ worker: `w${w}`, samples: 1, tensors: u }));
          const t0 = performance.now();
          s.aggregate();
          aggSeconds = Math.min(aggSeconds, (performance.now() - t0) / 1000);
        },
        { minRuns: backend === 'js' ? 1 : 3, minMs: 0 },
      );
      ctx.report({
        name: `${name} aggregate ${backend}`,
        value: aggSeconds * 1000,
        unit: 'ms',
        ref: sortSeconds * 1000,
        ratio: sortSeconds / aggSeconds,
        note: `${workers} x ${robustSize / 1e6}M floats; ref: per-coordinate JS sort ms, ratio = speed-up`,
      });
      s.dispose();
    }
  }

  // This VM's cost of touching fresh memory, which every newly allocated result array pays.
  const freshSeconds = await timeIt(() => new Float32Array(big).fill(1), { minRuns: 3, minMs: 0 });
  ctx.report({
    name: 'fresh Float32Array + fill',
    value: (big * 4) / freshSeconds / 1e9,
    unit: 'GB/s',
    note: `${big / 1e6}M floats: page faults of new memory`,
  });

  // Codecs: MB/s of float32 input (encode) and output (decode into a reused buffer), compression ratio.
  const cTensors = randomTensors(codecSize, 5);
  const denseMB = (codecSize * 4) / 1e6;
  for (const codec of CODECS) {
    const options = {
      codec,
      fraction: 0.01,
      chunk: 256,
      state: codec.startsWith('topk') ? createTopKState() : undefined,
    };
    let bytes = encodeUpdate(cTensors, options);
    const enc = await timeIt(() => (bytes = encodeUpdate(cTensors, options)), {
      minMs: ctx.quick ? 100 : 400,
    });
    const into = new Float32Array(codecSize);
    const dec = await timeIt(() => decodeUpdate(bytes, { codec, out: into }), {
      minMs: ctx.quick ? 100 : 400,
    });
    const note = `${codecSize / 1e6}M floats, ratio ${compressionRatio(cTensors, bytes).toFixed(2)}`;
    ctx.report({ name: `${codec} encode`, value: denseMB / enc, unit: 'MB/s', note });
    ctx.report({ name: `${codec} decode`, value: denseMB / dec, unit: 'MB/s', note });
    ctx.report({
      name: `${codec} ratio`,
      value: compressionRatio(cTensors, bytes),
      unit: 'x',
      note: 'dense float32 bytes / encoded bytes',
    });
  }
};

export default bench;
