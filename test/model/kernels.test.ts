// fedtune's wasm kernels (model/kernels.c, kernels.ts): the embedded module owns no memory, matches its source where
// clang is here, and every kernel agrees with plain tf ops, gradients included, on shapes with tails.
import { spawnSync } from 'node:child_process';
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../model/index.ts';
import { KERNELS_WASM } from '../../model/kernels-wasm.ts';
import {
  embeddingFused,
  fusedAttention,
  gemm,
  gemmFits,
  kernelsActive,
  layerNormFused,
  linearFused,
} from '../../model/kernels.ts';
import { causalAttention, gelu, layerNorm } from '../../model/ops.ts';
import { crossEntropy } from '../../model/train.ts';
import { createRng } from '../../model/rng.ts';
import { expectAllClose } from './helpers.ts';

/** The ids of a wasm module's sections, in order. */
function sectionIds(bytes: Uint8Array): number[] {
  const ids: number[] = [];
  let at = 8; // magic and version
  while (at < bytes.length) {
    ids.push(bytes[at]!);
    at++;
    let size = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[at++]!;
      size |= (b & 0x7f) << shift;
      shift += 7;
      if ((b & 0x80) === 0) break;
    }
    at += size;
  }
  return ids;
}

const random = (shape: number[], seed: number) => {
  const rng = createRng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: n }, () => rng.normal()),
    shape,
  );
};
const values = (t: tf.Tensor) => t.dataSync() as Float32Array;
const maxAbs = (xs: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < xs.length; i++) m = Math.max(m, Math.abs(xs[i]!));
  return m;
};

/** f and g (functions of the same inputs to one tensor) agree in value and in every input's gradient. */
function expectSameOp(
  what: string,
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  g: (...xs: tf.Tensor[]) => tf.Tensor,
  inputs: tf.Tensor[],
  rel = 1e-5,
) {
  tf.tidy(() => {
    const [yf, yg] = [f(...inputs), g(...inputs)];
    expect(yf.shape, `${what}: shape`).to.deep.equal(yg.shape);
    const ref = values(yg);
    expectAllClose(values(yf), ref, 1e-6 + rel * maxAbs(ref), `${what}: value`);
    const dy = random(yg.shape, 99);
    const grads = (h: typeof f) => tf.grads((...xs: tf.Tensor[]) => tf.sum(tf.mul(h(...xs), dy)))(inputs);
    const [gf, gg] = [grads(f), grads(g)];
    gg.forEach((gr, i) => {
      const r = values(gr);
      expect(maxAbs(r), `${what}: gradient ${i} is not all zero`).to.be.greaterThan(0);
      expectAllClose(values(gf[i]!), r, 1e-6 + rel * maxAbs(r), `${what}: gradient ${i}`);
    });
  });
}

describe('model: fedtune wasm kernels', function () {
  this.timeout(60_000);
  before(async () => {
    await initBackend({ backend: 'wasm' });
  });

  it('embeds a module that owns no memory: memory imported, no data, exports only functions', () => {
    const bytes = Buffer.from(KERNELS_WASM, 'base64');
    const module = new WebAssembly.Module(bytes);
    expect(WebAssembly.Module.imports(module)).to.deep.equal([
      { module: 'env', name: 'memory', kind: 'memory' },
    ]);
    const exports = WebAssembly.Module.exports(module);
    expect(exports.map((e) => e.kind)).to.satisfy((kinds: string[]) => kinds.every((k) => k === 'function'));
    expect(exports.map((e) => e.name)).to.include.members(['gemm', 'attn_fwd', 'attn_bwd', 'layernorm_fwd']);
    expect(sectionIds(bytes), 'no data section (11)').to.not.include(11);
  });

  it('is what model/kernels.c compiles to (where clang and lld are installed)', function () {
    if (spawnSync('clang', ['--version']).status !== 0 || spawnSync('wasm-ld', ['--version']).status !== 0) {
      this.skip(); // CI has no C compiler: the committed module is checked above, and against tf ops below
    }
    const check = spawnSync(process.execPath, ['scripts/build-kernels.js', '--check'], {
      encoding: 'utf8',
      cwd: new URL('../..', import.meta.url).pathname,
    });
    expect(check.status, check.stderr).to.equal(0);
  });

  it('serves the wasm backend, and not cpu', async () => {
    expect(kernelsActive()).to.equal(true);
    await initBackend({ backend: 'cpu' });
    expect(kernelsActive()).to.equal(false);
    expect(gemmFits(8, 8)).to.equal(false);
    await initBackend({ backend: 'wasm' });
  });

  it('multiplies as tf.matMul does, with either operand transposed, half panels and a bias', () => {
    // [m, k, n]: n % 8 == 4 takes the half panel; k = 1 and a long k; a scratch that has to grow.
    for (const [m, k, n] of [
      [4, 1, 4],
      [12, 7, 20],
      [64, 33, 260],
      [8, 700, 16],
    ] as const) {
      const a = random([m, k], m + k);
      const b = random([k, n], n);
      const bias = random([n], 7);
      tf.tidy(() => {
        const ref = values(tf.add(tf.matMul(a, b), bias));
        const tol = 1e-5 * maxAbs(ref);
        const cases: [string, tf.Tensor][] = [
          ['NN', gemm(a as tf.Tensor2D, b as tf.Tensor2D, false, false, bias)],
          ['TN', gemm(tf.transpose(a) as tf.Tensor2D, b as tf.Tensor2D, true, false, bias)],
          ['NT', gemm(a as tf.Tensor2D, tf.transpose(b) as tf.Tensor2D, false, true, bias)],
        ];
        for (const [what, c] of cases) expectAllClose(values(c), ref, tol, `${m}x${k}x${n} ${what}`);
      });
      tf.dispose([a, b, bias]);
    }
  });

  it('computes a linear layer (with and without GELU) and its gradients as tf ops do', () => {
    const x = random([12, 20], 1);
    const w = random([20, 28], 2);
    const b = random([28], 3);
    for (const withGelu of [false, true]) {
      expectSameOp(
        `linear${withGelu ? ' + GELU' : ''}`,
        (xi, wi, bi) => linearFused(xi as tf.Tensor2D, wi as tf.Tensor2D, bi!, withGelu),
        (xi, wi, bi) => {
          const y = tf.add(tf.matMul(xi as tf.Tensor2D, wi as tf.Tensor2D), bi!);
          return withGelu ? gelu(y) : y;
        },
        [x, w, b],
      );
    }
    tf.dispose([x, w, b]);
  });

  it('computes causal attention and its gradient as batched tf ops do, for lengths with and without tails', () => {
    for (const [b, t, nh, hd] of [
      [2, 13, 2, 4],
      [3, 16, 4, 8],
    ] as const) {
      const qkv = random([b * t, 3 * nh * hd], t);
      expectSameOp(
        `attention b${b} t${t} h${nh}x${hd}`,
        (x) => fusedAttention(x as tf.Tensor2D, b, t, nh),
        (x) => causalAttention(x as tf.Tensor2D, b, t, nh, { mode: 'batched', blockRows: 0 }),
        [qkv],
      );
      qkv.dispose();
    }
  });

  it('computes layer norm, cross-entropy and the embedding with their gradients as tf ops do', () => {
    const x = random([10, 12], 4);
    const g = random([12], 5);
    const b = random([12], 6);
    expectSameOp(
      'layer norm',
      (xi, gi, bi) => layerNormFused(xi as tf.Tensor2D, gi!, bi!),
      (xi, gi, bi) => layerNorm(xi as tf.Tensor2D, gi!, bi!),
      [x, g, b],
    );
    const logits = random([10, 12], 7);
    const targets = Int32Array.from({ length: 10 }, (_, i) => (i * 5) % 12);
    const onehot = tf.oneHot(tf.tensor1d(targets, 'int32'), 12);
    expectSameOp(
      'cross-entropy',
      (l) => crossEntropy(l as tf.Tensor2D, targets, true),
      (l) => tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(l!), onehot), 1))),
      [logits],
    );
    const table = random([9, 8], 8);
    const ids = Int32Array.from([3, 0, 3, 8, 1, 3]); // repeats: their gradients add up
    expectSameOp(
      'embedding',
      (tb) => embeddingFused(tb as tf.Tensor2D, ids),
      // gather's own gradient has no wasm kernel: the same rows picked by a one-hot matmul.
      (tb) => tf.matMul(tf.oneHot(tf.tensor1d(ids, 'int32'), 9), tb!),
      [table],
    );
    tf.dispose([x, g, b, logits, onehot, table]);
  });

  it('gives the same bits four lanes at a time as one at a time (GELU, its gradient: the vector exp and sigmoid)', () => {
    // Values across the exp's range, both signs, zero and beyond −87 in the sigmoid's argument.
    const xs = Float32Array.from({ length: 67 }, (_, i) => (i - 33) * 0.37 + (i % 5) * 0.013);
    xs[0] = 0;
    xs[1] = -60;
    xs[2] = 45;
    const dys = Float32Array.from(xs, (x, i) => 1 + 0.1 * x + i * 0.001);
    const kernel = (name: string, inputs: Record<string, tf.Tensor>) =>
      values(tf.engine().runKernel(name, inputs) as tf.Tensor);
    tf.tidy(() => {
      const u = tf.tensor1d(xs);
      const dy = tf.tensor1d(dys);
      const together = [kernel('FedtuneGelu', { u }), kernel('FedtuneGeluGrad', { u, dy })];
      xs.forEach((x, i) => {
        // One element alone takes the scalar path.
        const [ui, dyi] = [tf.tensor1d([x]), tf.tensor1d([dys[i]!])];
        expect(kernel('FedtuneGelu', { u: ui })[0], `gelu(${x})`).to.equal(together[0]![i]);
        expect(kernel('FedtuneGeluGrad', { u: ui, dy: dyi })[0], `gelu'(${x})`).to.equal(together[1]![i]);
      });
    });
  });

  it('refuses shapes and indices that would reach outside their tensors, with a code', () => {
    const a = random([8, 4], 1);
    const b = random([5, 8], 2);
    const table = random([9, 8], 3);
    const attempts: [string, () => unknown][] = [
      ['inner dimensions', () => gemm(a as tf.Tensor2D, b as tf.Tensor2D)],
      ['a bias of the wrong length', () => gemm(a as tf.Tensor2D, a as tf.Tensor2D, true, false, b)],
      ['rows that are not b·t', () => fusedAttention(random([10, 24], 4) as tf.Tensor2D, 2, 4, 2)],
      ['an id past the table', () => embeddingFused(table as tf.Tensor2D, Int32Array.from([1, 9]))],
      [
        'a negative target',
        () =>
          crossEntropy(
            table as tf.Tensor2D,
            Int32Array.from({ length: 9 }, (_, i) => i - 1),
            true,
          ),
      ],
    ];
    for (const [what, f] of attempts) {
      expect(() => tf.tidy(() => void f()), what)
        .to.throw()
        .with.property('code', 'E_MODEL_INPUT');
    }
    tf.dispose([a, b, table]);
  });

  it('leaves the backend’s other tensors alone and leaks none', () => {
    const keep = random([64, 64], 11);
    const before = Float32Array.from(values(keep));
    const count = tf.memory().numTensors;
    const x = random([32, 16], 12);
    const w = random([16, 24], 13);
    const b = random([24], 14);
    tf.tidy(() => {
      tf.grads((xi: tf.Tensor, wi: tf.Tensor) =>
        tf.sum(fusedAttention(linearFused(xi as tf.Tensor2D, wi as tf.Tensor2D, b, true), 2, 16, 2)),
      )([x, w]);
    });
    tf.dispose([x, w, b]);
    expect(tf.memory().numTensors).to.equal(count);
    expect(values(keep)).to.deep.equal(before);
    keep.dispose();
  });
});
