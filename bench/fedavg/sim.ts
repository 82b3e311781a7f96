// The FedAvg paper's experiment in one process (no chain, no sockets): clients, client sampling, local SGD, the
// weighted average, optional update codecs with error feedback, and a centralized baseline at equal computation.
import {
  createTopKState,
  decodeUpdate,
  encodeUpdate,
  type CodecName,
  type TopKState,
} from '../../aggregation/index.ts';
import {
  createModel,
  disposeModel,
  evaluate,
  getWeights,
  setWeights,
  trainLocal,
  type ModelConfig,
  type NamedTensors,
} from '../../model/index.ts';
import { createRng, permutation } from '../../model/index.ts';

/** E local epochs of minibatch size B per round; B = 'all' with E = 1 is FedSGD (one full-batch gradient). */
export interface Setting {
  name: string;
  epochs: number;
  batch: number | 'all';
}

export interface FederatedParameters {
  config: ModelConfig;
  /** Each client's training windows (t+1 tokens each). */
  clients: Int32Array[][];
  evalSet: Int32Array[];
  rounds: number;
  /** C: the fraction of clients each round samples (at least one). */
  fraction: number;
  setting: Setting;
  lr: number;
  seed: number;
  /** Evaluate after every this many rounds (and after the last). */
  evalEvery: number;
  codec?: CodecName;
  onRound?: (round: number, loss: number | null) => void;
}

export interface Curve {
  /** Held-out loss (nats/byte) after `round` rounds; round 0 is the initial model. */
  points: { round: number; loss: number }[];
  /** Per-example gradient computations over the whole run. */
  gradients: number;
  /** Mean encoded bytes of one round's client updates. */
  bytesPerRound: number;
}

export const stepsFor = (s: Setting, n: number) =>
  s.batch === 'all' ? s.epochs : s.epochs * Math.ceil(n / s.batch);

const SGD = { name: 'sgd' as const, momentum: 0 };

export async function federated(p: FederatedParameters): Promise<Curve> {
  const model = createModel(p.config, { seed: p.seed });
  const evaluateNow = async () => (await evaluate(model, p.evalSet, { batchSize: 64 })).loss;
  let global: NamedTensors = getWeights(model);
  const points = [{ round: 0, loss: await evaluateNow() }];
  const feedback = new Map<number, TopKState>();
  const perRound = Math.max(1, Math.round(p.fraction * p.clients.length));
  let gradients = 0;
  let bytes = 0;
  try {
    for (let round = 1; round <= p.rounds; round++) {
      const picked = Array.from(permutation(p.clients.length, createRng(p.seed * 7919 + round))).slice(
        0,
        perRound,
      );
      const sum = global.map((w) => new Float64Array(w.data.length));
      let weight = 0;
      for (const c of picked) {
        const examples = p.clients[c]!;
        const n = examples.length;
        setWeights(model, global);
        const steps = stepsFor(p.setting, n);
        const batchSize = p.setting.batch === 'all' ? n : p.setting.batch;
        const r = await trainLocal({
          model,
          examples,
          steps,
          batchSize,
          lr: p.lr,
          optimiser: SGD,
          schedule: { decay: 'constant' },
          seed: p.seed + round * 1000 + c,
        });
        gradients += steps * batchSize;
        let update = r.update;
        if (p.codec !== undefined && p.codec !== 'dense') {
          if (!feedback.has(c)) feedback.set(c, createTopKState());
          const encoded = encodeUpdate(update, { codec: p.codec, state: feedback.get(c), seed: round });
          bytes += encoded.length;
          update = decodeUpdate(encoded, {
            codec: p.codec,
            expect: update.map(({ name, shape }) => ({ name, shape })),
          });
        } else bytes += update.reduce((s, u) => s + u.data.length * 4, 0);
        update.forEach((u, i) => {
          const acc = sum[i]!;
          for (let j = 0; j < acc.length; j++) acc[j]! += n * u.data[j]!;
        });
        weight += n;
      }
      global = global.map((w, i) => ({
        ...w,
        data: Float32Array.from(w.data, (x, j) => x + sum[i]![j]! / weight),
      }));
      let loss: number | null = null;
      if (round % p.evalEvery === 0 || round === p.rounds) {
        setWeights(model, global);
        loss = await evaluateNow();
        points.push({ round, loss });
      }
      p.onRound?.(round, loss);
    }
  } finally {
    disposeModel(model);
  }
  return { points, gradients, bytesPerRound: bytes / p.rounds };
}

/**
 * Minibatch SGD on all clients' data pooled, for the same number of per-example gradients as a federated run; its
 * points are placed at the round with the same computation spent, so both share an x axis.
 */
export async function centralized(p: {
  config: ModelConfig;
  examples: Int32Array[];
  evalSet: Int32Array[];
  gradients: number;
  rounds: number;
  batch: number;
  lr: number;
  seed: number;
  evalEvery: number;
}): Promise<Curve> {
  const model = createModel(p.config, { seed: p.seed });
  const evaluateNow = async () => (await evaluate(model, p.evalSet, { batchSize: 64 })).loss;
  const points = [{ round: 0, loss: await evaluateNow() }];
  const totalSteps = Math.max(1, Math.round(p.gradients / p.batch));
  let done = 0;
  try {
    for (let round = p.evalEvery; ; round = Math.min(p.rounds, round + p.evalEvery)) {
      const until = Math.round((totalSteps * round) / p.rounds);
      if (until > done) {
        await trainLocal({
          model,
          examples: p.examples,
          steps: until - done,
          batchSize: p.batch,
          lr: p.lr,
          optimiser: SGD,
          schedule: { decay: 'constant' },
          seed: p.seed + round,
        });
        done = until;
      }
      points.push({ round, loss: await evaluateNow() });
      if (round === p.rounds) break;
    }
  } finally {
    disposeModel(model);
  }
  return { points, gradients: done * p.batch, bytesPerRound: 0 };
}

/** The first round whose held-out loss is at or below target (linear in between evaluations is not assumed). */
export function roundsToTarget(curve: Curve, target: number): number | null {
  return curve.points.find((pt) => pt.round > 0 && pt.loss <= target)?.round ?? null;
}

export const finalLoss = (curve: Curve) => curve.points.at(-1)!.loss;
