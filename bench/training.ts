// Training throughput: tokens/s and achieved GFLOP/s of the LM's training step for two sizes on each available
// backend, beside a plain 2-D matmul's GFLOP/s measured in the same run on the same backend.
import * as tf from '@tensorflow/tfjs';
import type { Bench } from './lib.ts';
import { timeIt, withRatio } from './lib.ts';
import {
  countParams,
  createModel,
  disposeModel,
  initBackend,
  modelConfig,
  trainLocal,
  type BackendChoice,
  type ModelConfig,
} from '../model/index.ts';

/** CPU seconds (user + system) of this process since c0. */
const cpuOf = (c0: NodeJS.CpuUsage) => {
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6;
};
const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)]!;

const SIZES: { label: string; config: ModelConfig }[] = [
  { label: 'd64', config: modelConfig('small', { dModel: 64, dMlp: 256 }) },
  { label: 'small-d128', config: modelConfig('small') },
];
const BATCH = 8;

/** FLOPs of one training step: 6·N per token for the matmul parameters (wte counts: it is the tied head), plus attention. */
function stepFlops(config: ModelConfig, tokens: number): number {
  const n = countParams(config) - config.context * config.dModel; // wpe is an add, not a matmul
  return tokens * (6 * n + 12 * config.nLayer * config.context * config.dModel);
}

const bench: Bench = async ({ quick, report, progress }) => {
  const backends: BackendChoice[] = ['tensorflow', 'wasm', 'cpu'];
  const tokensPerSec = new Map<string, number>();
  for (const backend of backends) {
    let name: string;
    try {
      name = (await initBackend({ backend })).name;
    } catch {
      progress(`${backend}: not available, skipped`);
      continue;
    }
    const m = 512;
    const a = tf.randomNormal([m, m]) as tf.Tensor2D;
    const b = tf.randomNormal([m, m]) as tf.Tensor2D;
    // Not tf.tidy(() => ….dataSync()): tidy walks a returned typed array element by element (10x slower here).
    // CPU seconds beside wall seconds: on a shared machine the process's own CPU time moves far less with the load.
    let cpuSeconds = 0;
    const matmulGflops = async () => {
      const c0 = process.cpuUsage();
      let runs = 0;
      const seconds = await timeIt(
        () => {
          const c = tf.matMul(a, b);
          c.dataSync();
          c.dispose();
          runs++;
        },
        { minMs: name === 'cpu' ? 500 : 600 },
      );
      cpuSeconds = cpuOf(c0) / runs;
      return (2 * m * m * m) / seconds / 1e9;
    };
    const mm: number[] = [await matmulGflops()];
    const mmCpu: number[] = [(2 * m * m * m) / cpuSeconds / 1e9];

    for (const { label, config } of SIZES) {
      const steps = name === 'cpu' ? (quick ? 2 : 4) : quick ? 6 : 20;
      // The machine is shared: each repeat times the matmul reference right before the steps, and the medians count.
      const repeats = name === 'cpu' || quick ? 1 : 3;
      const examples = Array.from({ length: 64 }, (_, i) =>
        Int32Array.from({ length: config.context + 1 }, (_, j) => (i * 31 + j * 7) % 256),
      );
      const model = createModel(config, { seed: 1 });
      await trainLocal({ model, examples, steps: 2, batchSize: BATCH, lr: 1e-3 }); // warm-up: kernels, XNNPACK operators
      progress(`${name} ${label}: ${repeats} x ${steps} steps`);
      const tps: number[] = [];
      const ratios: number[] = [];
      const gflops: number[] = [];
      const cpuRatios: number[] = [];
      for (let rep = 0; rep < repeats; rep++) {
        const ref = rep === 0 ? mm[0]! : await matmulGflops();
        if (rep > 0) {
          mm.push(ref);
          mmCpu.push((2 * m * m * m) / cpuSeconds / 1e9);
        }
        const t0 = performance.now();
        const c0 = process.cpuUsage();
        const r = await trainLocal({ model, examples, steps, batchSize: BATCH, lr: 1e-3 });
        const seconds = (performance.now() - t0) / 1000;
        tps.push(r.tokens / seconds);
        gflops.push(stepFlops(config, r.tokens) / seconds / 1e9);
        ratios.push(gflops.at(-1)! / ref);
        cpuRatios.push(stepFlops(config, r.tokens) / cpuOf(c0) / 1e9 / mmCpu.at(-1)!);
      }
      disposeModel(model);
      tokensPerSec.set(`${name}:${label}`, median(tps));
      const note = `${label}: d${config.dModel} L${config.nLayer} H${config.nHead} ctx${config.context}, ${countParams(config)} params, batch ${BATCH}, AdamW, ${name}${repeats > 1 ? `, median of ${repeats}` : ''}`;
      report({ name: `training.tokens_per_s_${name}_${label}`, value: median(tps), unit: 'tokens/s', note });
      const g = median(gflops);
      report({
        name: `training.gflops_${name}_${label}`,
        value: g,
        unit: 'GFLOP/s',
        note: `${note}; ref: the 2-D matmul timed just before each repeat (ratio: median of the repeats' ratios)`,
        ref: g / median(ratios),
        ratio: median(ratios),
      });
      report({
        name: `training.cpu_time_ratio_${name}_${label}`,
        value: median(cpuRatios),
        unit: 'ratio',
        note: `${note}; the step's GFLOP per CPU second over the 2-D matmul's (the process's own CPU time, which moves less with the machine's load than wall time)`,
      });
    }
    tf.dispose([a, b]);
    report({
      name: `training.matmul_${name}`,
      value: median(mm),
      unit: 'GFLOP/s',
      note: `${m}x${m}x${m} float32 2-D matMul, ${name}${mm.length > 1 ? `, median of ${mm.length}` : ''}`,
    });
  }
  for (const { label } of SIZES) {
    const [w, c] = [tokensPerSec.get(`wasm:${label}`), tokensPerSec.get(`cpu:${label}`)];
    if (w !== undefined && c !== undefined) {
      report(
        withRatio(
          {
            name: `training.wasm_vs_cpu_${label}`,
            value: w,
            unit: 'tokens/s',
            note: `wasm tokens/s; ref: cpu`,
          },
          c,
        ),
      );
    }
  }
};

export default bench;
