// `npm run bench -- reexecute [--quick]`: what re-executing a worker's task reproduces, and how far apart an honest
// re-run and a cheat land (docs/model.md, "Reproducible training"). One real task (tiny LM, a Moby Dick shard,
// batch 16, AdamW): run twice in this process and once in a fresh one per backend (same payload bytes?), wasm against
// cpu, and compareWork's relative L2 distance for an honest re-run on the other backend, a random vector of the same
// norm, training on another shard and a scaled update, for each codec.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRng } from '../model/index.ts';
import { compareWork, type Reexecution } from '../worker/index.ts';
import type { Bench } from './lib.ts';
import { fixture, payloadsOf, runTask } from './reexecute/fixture.ts';

const here = dirname(fileURLToPath(import.meta.url));
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

function transformed(
  r: Reexecution,
  f: (x: Float32Array, i: number) => Float32Array,
): { update: Reexecution['update'] } {
  return { update: r.update.map((t, i) => ({ ...t, data: f(t.data, i) })) };
}

function randomOfSameNorm(r: Reexecution, seed: number): { update: Reexecution['update'] } {
  const rng = createRng(seed);
  let n2 = 0;
  let r2 = 0;
  const raw = r.update.map((t) => {
    const x = new Float32Array(t.data.length);
    for (let i = 0; i < x.length; i++) {
      x[i] = rng.normal();
      r2 += x[i]! * x[i]!;
      n2 += t.data[i]! * t.data[i]!;
    }
    return x;
  });
  const s = Math.sqrt(n2 / r2);
  return transformed(r, (_, i) => raw[i]!.map((v) => v * s));
}

const bench: Bench = async ({ quick, report, progress }) => {
  const f = await fixture();
  const stepsList = quick ? [5] : [20, 100];
  for (const steps of stepsList) {
    const task = { steps, codec: { codec: 'dense' } };
    progress(`${steps} steps: wasm twice`);
    const w1 = await runTask(f, 'wasm', task);
    const w2 = await runTask(f, 'wasm', task);
    report({
      name: `wasm in-process repeat identical (${steps} steps)`,
      value: same(w1.payload, w2.payload) ? 1 : 0,
      unit: 'bool',
    });
    progress(`${steps} steps: cpu`);
    const c1 = await runTask(f, 'cpu', task);
    if (steps === stepsList[0]) {
      const c2 = await runTask(f, 'cpu', task);
      report({
        name: `cpu in-process repeat identical (${steps} steps)`,
        value: same(c1.payload, c2.payload) ? 1 : 0,
        unit: 'bool',
      });
      const fresh = (backend: string) => {
        progress(`${steps} steps: ${backend} in a fresh process`);
        const child = spawnSync(
          process.execPath,
          ['--import', 'tsx', join(here, 'reexecute', 'child.ts'), backend, String(steps)],
          { encoding: 'utf8' },
        );
        const line = child.stdout.trim().split('\n').pop() ?? '{}';
        return JSON.parse(line) as { flavour?: string; hashes?: Record<string, string>; dense?: string };
      };
      for (const backend of ['wasm', 'cpu'] as const) {
        const { hashes } = fresh(backend);
        const mine = backend === 'wasm' ? w1 : c1;
        const ok = payloadsOf(f, mine).every((p) => hashes?.[p.name] === sha(p.payload));
        report({
          name: `${backend} fresh process identical, every codec (${steps} steps)`,
          value: ok ? 1 : 0,
          unit: 'bool',
        });
      }
      const noSimd = fresh('wasm-nosimd');
      const plain = new Uint8Array(Buffer.from(noSimd.dense ?? '', 'base64'));
      report({
        name: `wasm without SIMD vs wasm-simd identical (${steps} steps)`,
        value: same(plain, w1.payload) ? 1 : 0,
        unit: 'bool',
        note: noSimd.flavour,
      });
      report({
        name: `distance: honest, wasm without SIMD, dense (${steps} steps)`,
        value: compareWork({ payload: plain, codec: 'dense' }, w1).distance,
        unit: 'rel L2',
      });
    }
    report({
      name: `wasm vs cpu identical (${steps} steps)`,
      value: same(w1.payload, c1.payload) ? 1 : 0,
      unit: 'bool',
    });
    progress(`${steps} steps: another shard`);
    const other = await runTask(f, 'wasm', { ...task, shards: [3] });
    const cases: [string, { update: Reexecution['update'] }][] = [
      ['honest, other backend (cpu)', c1],
      ['random vector, same norm', randomOfSameNorm(w1, 99)],
      ['trained on another shard', other],
      ['scaled x2', transformed(w1, (x) => x.map((v) => v * 2))],
      ['scaled x1.25', transformed(w1, (x) => x.map((v) => v * 1.25))],
      ['scaled x1.1', transformed(w1, (x) => x.map((v) => v * 1.1))],
      ['scaled x0.5', transformed(w1, (x) => x.map((v) => v * 0.5))],
    ];
    const reference = payloadsOf(f, w1);
    for (const [label, u] of cases) {
      payloadsOf(f, u).forEach((p, i) => {
        const verdict = compareWork(
          { payload: p.payload, codec: p.codec },
          { payload: reference[i]!.payload },
        );
        report({
          name: `distance: ${label}, ${p.name} (${steps} steps)`,
          value: verdict.distance,
          unit: 'rel L2',
          note: verdict.ok ? 'accepted' : 'rejected',
        });
      });
    }
  }
};

export default bench;
