// Aggregation throughput: streaming FedAvg input GB/s beside a memory copy and Flower's numpy aggregate, robust rules beside a per-coordinate JS sort, codec MB/s and ratios.
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
import { layoutOf, unflatten, type NamedTensor, type Strategy } from '../aggregation/index.ts';
// The JS reference store is what the wasm kernels are measured against; it is deliberately not public.
// eslint-disable-next-line fedtune/boundaries
import { JsUpdateStore } from '../aggregation/kernels/reference.ts';
import type { Bench, Figure } from './lib.ts';
import { memcpyGBs, timeIt, withRatio } from './lib.ts';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import os from 'node:os';

const here = fileURLToPath(new URL('.', import.meta.url));

/** The 1-minute load average, stated beside each figure: two cores shared with other work move them. */
function load(): string {
  return `load ${os.loadavg()[0]!.toFixed(1)} on ${os.cpus().length} cores`;
}

/** Runs bench/aggregation_numpy.py (Flower's `aggregate`); a note instead when python3 or numpy is missing. */
function flowerNumpy(
  size: number,
  workers: number,
  runs: number,
): { ok: true; GBs: number; version: string } | { ok: false; why: string } {
  try {
    const out = execFileSync(
      'python3',
      [`${here}aggregation_numpy.py`, String(size), String(workers), String(runs)],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 300_000,
      },
    );
    const r = JSON.parse(out.trim().split('\n').pop()!) as { GBs: number; numpy: string };
    return { ok: true, GBs: r.GBs, version: r.numpy };
  } catch (e) {
    const err = e as { code?: string; stderr?: string; message: string };
    if (err.code === 'ENOENT') return { ok: false, why: 'python3 is not installed' };
    if (/No module named .?numpy/.test(err.stderr ?? '')) return { ok: false, why: 'python3 has no numpy' };
    return { ok: false, why: (err.stderr ?? err.message).trim().split('\n').pop() ?? 'it failed' };
  }
}

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

  // Flower's numpy `aggregate` on the same shapes, when python3 has numpy: the reference for FedAvg's whole round. It
  // runs before and after the FedAvg figures, and the faster of the two is the reference (the load moves both).
  const numpyRuns = ctx.quick ? 3 : 5;
  const numpyBefore = flowerNumpy(big, workers, numpyRuns);
  const numpyLoad = load();
  if (!numpyBefore.ok) ctx.progress(`Flower's numpy aggregate skipped: ${numpyBefore.why}`);

  // Four distinct updates cycled over 16 workers: each is 40 MB, far beyond cache, so every accept reads memory.
  const updates = [0, 1, 2, 3].map((s) => randomTensors(big, s));
  const weights = randomTensors(big, 99);
  const bytes = workers * big * 4;
  const ref = await memcpyGBs();
  const rounds: Figure[] = [];
  for (const mode of ['wasm', 'js', 'wasm-input'] as const) {
    const backend = mode === 'js' ? 'js' : 'wasm';
    const s = createStrategy({ name: 'fedavg' }, weights, { backend });
    // wasm-input: each update is decoded (here: copied, as the dense codec's decode does) into the strategy's input
    // buffer, as a coordinator decodes a payload into it before accept; the decode is not timed, as numpy's inputs
    // are already decoded arrays. The other modes accept plain Float32Arrays.
    const input = mode === 'wasm-input' ? s.inputBuffer() : undefined;
    const views = input ? unflatten(layoutOf(weights), input) : undefined;
    let round = 0;
    const acceptTimes: number[] = [];
    const roundTimes: number[] = [];
    for (let run = 0; run < (ctx.quick ? 3 : 5); run++) {
      s.configureRound(++round);
      let accepting = 0;
      for (let w = 0; w < workers; w++) {
        const u = updates[w % 4]!;
        if (input) for (let t = 0; t < u.length; t++) input.set(u[t]!.data, t === 0 ? 0 : big - 1000);
        const t0 = performance.now();
        s.accept({ worker: `w${w}`, samples: 1 + w, tensors: views ?? u });
        accepting += performance.now() - t0;
      }
      const t1 = performance.now();
      s.aggregate();
      acceptTimes.push(accepting / 1000);
      roundTimes.push((accepting + performance.now() - t1) / 1000);
    }
    const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;
    ctx.report(
      withRatio(
        {
          name: `fedavg accept ${mode}`,
          value: bytes / median(acceptTimes) / 1e9,
          unit: 'GB/s',
          note: `${workers} x ${big / 1e6}M floats, input bytes read; ref: memcpy in this process; ${load()}`,
        },
        ref,
      ),
    );
    rounds.push({
      name: `fedavg round ${mode}`,
      value: bytes / median(roundTimes) / 1e9,
      unit: 'GB/s',
      note: `accepts + aggregate (mean, server step, new weights); ${load()}`,
    });
    s.dispose();
  }
  let numpy: number | undefined;
  if (numpyBefore.ok) {
    const after = flowerNumpy(big, workers, numpyRuns);
    numpy = Math.max(numpyBefore.GBs, after.ok ? after.GBs : 0);
    ctx.report({
      name: "Flower's numpy aggregate",
      value: numpy,
      unit: 'GB/s',
      note:
        `${workers} x ${big / 1e6}M floats, input bytes read; numpy ${numpyBefore.version}; the faster of a run before ` +
        `(${numpyBefore.GBs.toFixed(2)}, ${numpyLoad}) and after (${after.ok ? after.GBs.toFixed(2) : '-'}, ${load()}) the FedAvg figures`,
    });
  }
  for (const f of rounds)
    ctx.report(
      withRatio({ ...f, note: `${f.note}${numpy ? "; ref: Flower's numpy aggregate" : ''}` }, numpy),
    );

  // Robust rules: the aggregate step over 16 stored updates, beside the per-coordinate JS sort (the JS reference store).
  const rUpdates = Array.from({ length: workers }, (_, w) => randomTensors(robustSize, 100 + w));
  const rWeights = randomTensors(robustSize, 7);
  const sortRef = new JsUpdateStore(robustSize);
  for (const u of rUpdates) {
    sortRef.stage(
      u.map((t) => t.data),
      [0, robustSize - 1000],
    );
    sortRef.commit();
  }
  const sortSeconds = await timeIt(() => sortRef.sortedMean(7, 9), { minRuns: 1, minMs: 0 });
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
