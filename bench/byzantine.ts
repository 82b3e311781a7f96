// Byzantine workers against each aggregator, in process (no chain, no sockets): 10 workers train a softmax classifier
// by federated rounds while f = 0..3 of them send sign-flipped, x100 scaled, Gaussian-noise or wrong-shard updates;
// the figure per cell is the final held-out cross-entropy (nats), beside the clean FedAvg run as the reference.
import { createStrategy, seededRng, type NamedTensor, type Rng } from '../aggregation/index.ts';
import type { Bench } from './lib.ts';

const WORKERS = 10;
const FEATURES = 16;
const CLASSES = 5;
const PER_WORKER = 200;
const HELD_OUT = 2000;
const LOCAL_STEPS = 5;
const LR = 0.5;

export const ATTACKS = ['sign-flip', 'scale-x100', 'gaussian', 'wrong-shard'] as const;
type Attack = (typeof ATTACKS)[number];

/** The aggregators compared, as the specs a proposal would carry on chain. */
export const AGGREGATORS: { label: string; spec: { name: string; options: Record<string, unknown> } }[] = [
  { label: 'fedavg', spec: { name: 'fedavg', options: { clip: null } } },
  { label: 'fedavg+clip', spec: { name: 'fedavg', options: {} } }, // the default: adaptive clip at 2x the median norm
  { label: 'median', spec: { name: 'median', options: {} } },
  { label: 'trimmed-mean', spec: { name: 'trimmed-mean', options: { beta: 0.3 } } },
  { label: 'krum', spec: { name: 'krum', options: { f: 3 } } },
];

interface Data {
  x: Float64Array; // n x FEATURES
  y: Int32Array;
  n: number;
}

function makeData(rng: Rng, means: Float64Array, n: number): Data {
  const x = new Float64Array(n * FEATURES);
  const y = new Int32Array(n);
  const noise = new Float64Array(FEATURES);
  for (let i = 0; i < n; i++) {
    const c = rng.u32() % CLASSES;
    y[i] = c;
    rng.gaussian(noise, 1);
    for (let j = 0; j < FEATURES; j++) x[i * FEATURES + j] = means[c * FEATURES + j]! + noise[j]!;
  }
  return { x, y, n };
}

/** Mean cross-entropy of softmax(xW + b) and, when `grad` is given, its gradient added into it. */
function loss(w: Float64Array, data: Data, grad?: Float64Array): number {
  const bOff = FEATURES * CLASSES;
  const z = new Float64Array(CLASSES);
  let total = 0;
  for (let i = 0; i < data.n; i++) {
    let max = -Infinity;
    for (let c = 0; c < CLASSES; c++) {
      let s = w[bOff + c]!;
      for (let j = 0; j < FEATURES; j++) s += data.x[i * FEATURES + j]! * w[j * CLASSES + c]!;
      z[c] = s;
      if (s > max) max = s;
    }
    let sum = 0;
    for (let c = 0; c < CLASSES; c++) sum += Math.exp(z[c]! - max);
    total += Math.log(sum) + max - z[data.y[i]!]!;
    if (grad) {
      for (let c = 0; c < CLASSES; c++) {
        const g = (Math.exp(z[c]! - max) / sum - (c === data.y[i] ? 1 : 0)) / data.n;
        grad[bOff + c] += g;
        for (let j = 0; j < FEATURES; j++) grad[j * CLASSES + c] += data.x[i * FEATURES + j]! * g;
      }
    }
  }
  return total / data.n;
}

/** An honest worker's update: LOCAL_STEPS of full-batch gradient descent from the global weights, as a delta. */
function localDelta(global: Float32Array, data: Data): Float32Array {
  const w = Float64Array.from(global);
  const grad = new Float64Array(w.length);
  for (let s = 0; s < LOCAL_STEPS; s++) {
    grad.fill(0);
    loss(w, data, grad);
    for (let k = 0; k < w.length; k++) w[k] -= LR * grad[k]!;
  }
  return Float32Array.from(w, (v, k) => v - global[k]!);
}

function attacked(attack: Attack, honest: Float32Array, wrong: Float32Array, rng: Rng): Float32Array {
  switch (attack) {
    case 'sign-flip':
      return honest.map((v) => -v);
    case 'scale-x100':
      return honest.map((v) => 100 * v);
    case 'gaussian': {
      const out = new Float32Array(honest.length);
      rng.gaussian(out, 1);
      return out;
    }
    case 'wrong-shard':
      return wrong;
  }
}

const tensors = (flat: Float32Array): NamedTensor[] => [
  { name: 'w', shape: [FEATURES, CLASSES], data: flat.subarray(0, FEATURES * CLASSES) },
  { name: 'b', shape: [CLASSES], data: flat.subarray(FEATURES * CLASSES) },
];

/** Runs one cell: `rounds` federated rounds with `f` attackers; returns the final held-out loss. */
function runCell(
  spec: { name: string; options: Record<string, unknown> },
  attack: Attack,
  f: number,
  rounds: number,
  shards: Data[],
  wrongShards: Data[],
  heldOut: Data,
): { loss: number; rejected: number } {
  const strategy = createStrategy(spec, tensors(new Float32Array(FEATURES * CLASSES + CLASSES)), {
    backend: 'js',
  });
  const rng = seededRng(7, f);
  let rejected = 0;
  for (let r = 0; r < rounds; r++) {
    strategy.configureRound(r);
    const global = Float32Array.from(strategy.weights().flatMap((t) => [...t.data]));
    for (let i = 0; i < WORKERS; i++) {
      const honest = localDelta(global, shards[i]!);
      // The attackers are the last f workers, so the arrival order mixes them with honest ones for rules that care.
      const delta =
        i >= WORKERS - f ? attacked(attack, honest, localDelta(global, wrongShards[i]!), rng) : honest;
      const verdict = strategy.accept({ worker: `w${i}`, samples: PER_WORKER, tensors: tensors(delta) });
      if (!verdict.ok) rejected++;
    }
    strategy.aggregate();
  }
  const final = Float64Array.from(strategy.weights().flatMap((t) => [...t.data]));
  strategy.dispose();
  return { loss: loss(final, heldOut), rejected };
}

const bench: Bench = async (ctx) => {
  const rounds = ctx.quick ? 8 : 30;
  const rng = seededRng(14);
  const means = new Float64Array(CLASSES * FEATURES);
  rng.gaussian(means, 1);
  const shards = Array.from({ length: WORKERS }, () => makeData(rng, means, PER_WORKER));
  // Wrong-shard data: the same inputs with every label moved to the next class (data outside the task).
  const wrongShards = shards.map((s) => ({ ...s, y: s.y.map((c) => (c + 1) % CLASSES) }));
  const heldOut = makeData(rng, means, HELD_OUT);
  const initial = loss(new Float64Array(FEATURES * CLASSES + CLASSES), heldOut);
  const clean = runCell(AGGREGATORS[0]!.spec, 'sign-flip', 0, rounds, shards, wrongShards, heldOut).loss;
  ctx.progress(
    `${WORKERS} workers, ${rounds} rounds, softmax regression (${FEATURES} features, ${CLASSES} classes); ` +
      `held-out loss at start ${initial.toFixed(3)}, clean FedAvg ${clean.toFixed(3)} nats`,
  );
  const table: string[][] = [];
  for (const attack of ATTACKS) {
    for (let f = 0; f <= 3; f++) {
      if (f === 0 && attack !== ATTACKS[0]) continue; // no attacker: the same run whatever the attack
      const row = [f === 0 ? 'none' : attack, String(f)];
      for (const { label, spec } of AGGREGATORS) {
        const { loss: value, rejected } = runCell(spec, attack, f, rounds, shards, wrongShards, heldOut);
        ctx.report({
          name: `byzantine.${label}.${f === 0 ? 'none' : attack}.f${f}`,
          value,
          unit: 'nats',
          ref: clean,
          ratio: value / clean,
          note: `held-out cross-entropy after ${rounds} rounds; ref: clean FedAvg${rejected ? `; ${rejected} updates rejected` : ''}`,
        });
        row.push(Number.isFinite(value) ? value.toFixed(3) : String(value));
      }
      table.push(row);
    }
  }
  const header = ['attack', 'f', ...AGGREGATORS.map((a) => a.label)];
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
  ctx.progress(`held-out loss (nats; start ${initial.toFixed(3)}, clean FedAvg ${clean.toFixed(3)}):`);
  for (const l of [line(header), ...table.map(line)]) ctx.progress(l);
};

export default bench;
