// `npm run bench -- kernels [--quick]`: fedtune's wasm kernels (model/kernels.c) against what they replace, in the same
// process: the GEMM at the training step's shapes against tfjs's matMul (XNNPACK) with the weights as a kept tensor,
// a fresh one (a new XNNPACK operator each call, as in training), and the explicit transposes a gradient needed; and
// causal attention forward + backward against the 2-D block attention. Times are CPU seconds of this process.
import * as tf from '@tensorflow/tfjs';
import type { Bench } from './lib.ts';
import { timeIt, withRatio } from './lib.ts';
import { blockAttention, fusedAttention, gemm, initBackend, kernelsActive } from '../model/index.ts';

/** Median CPU milliseconds of f over `runs` runs (after two warm-up runs), disposing what it returns. */
async function cpuMs(f: () => tf.Tensor | tf.Tensor[], runs: number): Promise<number> {
  for (let i = 0; i < 2; i++) tf.dispose(f());
  return 1000 * (await timeIt(() => tf.dispose(f()), { minMs: 0, minRuns: runs, clock: 'cpu' }));
}

const bench: Bench = async ({ quick, report, progress }) => {
  await initBackend({ backend: 'wasm' });
  if (!kernelsActive())
    throw new Error('fedtune kernels are not active on this wasm backend (no wasm SIMD?)');
  const runs = quick ? 7 : 25;
  // [m, k, n]: a d64 / d128 step's forward (x·W) shapes; the gradients use the same shapes transposed.
  const shapes: [number, number, number][] = quick
    ? [
        [512, 64, 256],
        [512, 256, 64],
      ]
    : [
        [512, 64, 192],
        [512, 64, 256],
        [512, 256, 64],
        [512, 128, 384],
        [512, 128, 512],
        [512, 512, 128],
      ];
  for (const [m, k, n] of shapes) {
    progress(`GEMM ${m}x${k}x${n}`);
    const a = tf.randomNormal([m, k]) as tf.Tensor2D;
    const b = tf.randomNormal([k, n]) as tf.Tensor2D;
    const at = tf.transpose(a) as tf.Tensor2D;
    const gflops = (ms: number) => (2 * m * n * k) / ms / 1e6;
    const ours = gflops(await cpuMs(() => gemm(a, b), runs));
    const oursT = gflops(await cpuMs(() => gemm(at, b, true), runs));
    const kept = gflops(await cpuMs(() => tf.matMul(a, b), runs));
    const fresh = gflops(
      await cpuMs(() => {
        const b2 = tf.clone(b); // a new tensor: XNNPACK packs it into a new operator, as every training step does
        const c = tf.matMul(a, b2);
        b2.dispose();
        return c;
      }, runs),
    );
    const transposed = gflops(await cpuMs(() => tf.matMul(tf.transpose(at), b), runs));
    const shape = `${m}x${k}x${n}`;
    report(
      withRatio(
        {
          name: `kernels.gemm_${shape}`,
          value: ours,
          unit: 'GFLOP/s',
          note: 'ref: tfjs matMul, kept weights',
        },
        kept,
      ),
    );
    report(
      withRatio(
        {
          name: `kernels.gemm_${shape}_fresh_b`,
          value: ours,
          unit: 'GFLOP/s',
          note: 'ref: tfjs matMul, a new right-hand tensor',
        },
        fresh,
      ),
    );
    report(
      withRatio(
        {
          name: `kernels.gemm_${shape}_transposed_a`,
          value: oursT,
          unit: 'GFLOP/s',
          note: 'Aᵀ·B; ref: tfjs Transpose + matMul',
        },
        transposed,
      ),
    );
    tf.dispose([a, b, at]);
  }
  for (const [d, nh] of [
    [64, 4],
    [128, 4],
  ] as const) {
    const [batch, t] = [8, 64];
    progress(`attention d${d}, ${nh} heads, ${batch} x ${t} tokens`);
    const qkv = tf.randomNormal([batch * t, 3 * d]) as tf.Tensor2D;
    const dy = tf.randomNormal([batch * t, d]);
    const step = (attn: (x: tf.Tensor2D) => tf.Tensor) =>
      tf.grad((x: tf.Tensor) => tf.sum(tf.mul(attn(x as tf.Tensor2D), dy)));
    const ours = step((x) => fusedAttention(x, batch, t, nh));
    const blocks = step((x) => blockAttention(x, batch, t, nh, 64));
    const oursMs = await cpuMs(() => ours(qkv), runs);
    const blocksMs = await cpuMs(() => blocks(qkv), runs);
    report(
      withRatio(
        {
          name: `kernels.attention_d${d}_ms`,
          value: oursMs,
          unit: 'ms',
          note: `forward + backward, ${batch} x ${t} tokens, ${nh} heads, CPU ms; ref: 2-D block attention (ratio < 1: faster)`,
        },
        blocksMs,
      ),
    );
    tf.dispose([qkv, dy]);
  }
};

export default bench;
