// Splitting a dataset among workers: a held-out eval split first, then IID, natural-partition or Dirichlet label-skew shards.
import { DatasetError } from './errors.ts';
import { Prng } from './prng.ts';
import type { Dataset } from './types.ts';

export const SHARD_SCHEMES = ['iid', 'partition', 'dirichlet'] as const;
export type ShardScheme = (typeof SHARD_SCHEMES)[number];

export const DEFAULT_SEED = 0;
export const DEFAULT_EVAL_FRACTION = 0.1;
export const DEFAULT_ALPHA = 0.5;

export interface ShardParameters {
  scheme: ShardScheme;
  /** Number of shards. Required for iid and dirichlet; for partition it defaults to one shard per key value. */
  shards?: number;
  /** Dirichlet concentration: large is near IID, small gives each shard few labels. */
  alpha?: number;
  /** Any integer, taken modulo 2^32. */
  seed?: number;
  /** Fraction of records held out for evaluation, carved out before sharding; in [0, 1). */
  evalFraction?: number;
  /** partition: the meta field to group by; defaults to the dataset's partitionKey (SOTU: president). */
  by?: string;
}

/** Which records (indices into dataset.records, ascending) are held out and which each shard holds. */
export interface ShardPlan {
  scheme: ShardScheme;
  seed: number;
  evalFraction: number;
  alpha?: number;
  by?: string;
  eval: number[];
  shards: number[][];
  /** partition: the key value(s) each shard holds. */
  keys?: string[];
}

// Independent PRNG streams so that changing one step's draws never shifts another's.
const EVAL_STREAM = 1;
const SHARD_STREAM = 2;
const DIRICHLET_ATTEMPTS = 100;

export function shardDataset(dataset: Dataset, params: ShardParameters): ShardPlan {
  const { scheme } = params;
  const seed = params.seed ?? DEFAULT_SEED;
  const evalFraction = params.evalFraction ?? DEFAULT_EVAL_FRACTION;
  if (!(SHARD_SCHEMES as readonly string[]).includes(scheme)) {
    bad(`scheme "${scheme}" is not one of ${SHARD_SCHEMES.join(', ')}`);
  }
  if (!Number.isSafeInteger(seed)) bad(`seed must be an integer, got ${seed}`);
  if (!(evalFraction >= 0 && evalFraction < 1)) bad(`eval fraction must be in [0, 1), got ${evalFraction}`);
  if (params.shards !== undefined && !(Number.isInteger(params.shards) && params.shards >= 1)) {
    bad(`shards must be a positive integer, got ${params.shards}`);
  }
  if (scheme !== 'partition' && params.shards === undefined)
    bad(`the ${scheme} scheme needs a number of shards`);

  const n = dataset.records.length;
  const by = scheme === 'partition' ? (params.by ?? dataset.partitionKey) : undefined;
  if (scheme === 'partition' && by === undefined) {
    throw new DatasetError(
      'E_SHARD_NO_PARTITION',
      `${dataset.name} has no natural partition; name a meta field to group by (--by)`,
    );
  }
  const keyOf = (i: number): string => {
    const v = dataset.records[i]!.meta?.[by!];
    if (v === undefined) {
      throw new DatasetError(
        'E_SHARD_NO_KEY',
        `record "${dataset.records[i]!.id}" has no "${by}" to partition by`,
      );
    }
    return String(v);
  };
  const allLabelled = dataset.records.every((r) => r.label !== undefined);

  // Eval split, stratified by what the scheme splits on so that held-out data looks like training data.
  const stratumOf =
    scheme === 'partition' ? keyOf : allLabelled ? (i: number) => dataset.records[i]!.label! : () => '';
  const evalSet = carveEval(n, evalFraction, stratumOf, new Prng(seed, EVAL_STREAM));
  const train: number[] = [];
  for (let i = 0; i < n; i++) if (!evalSet.has(i)) train.push(i);
  const evalIdx = [...evalSet].sort((a, b) => a - b);

  const rng = new Prng(seed, SHARD_STREAM);
  const plan: ShardPlan = { scheme, seed, evalFraction, eval: evalIdx, shards: [] };
  if (scheme === 'iid') {
    const k = params.shards!;
    enough(train.length, k, dataset.name);
    const order = rng.shuffle(train.slice());
    for (let s = 0; s < k; s++) {
      plan.shards.push(
        order.slice(Math.floor((s * order.length) / k), Math.floor(((s + 1) * order.length) / k)),
      );
    }
  } else if (scheme === 'partition') {
    plan.by = by!;
    const groups = new Map<string, number[]>();
    for (const i of train) {
      const key = keyOf(i);
      const g = groups.get(key);
      if (g) g.push(i);
      else groups.set(key, [i]);
    }
    const k = params.shards ?? groups.size;
    if (k > groups.size) {
      throw new DatasetError(
        'E_SHARD_TOO_MANY',
        `${dataset.name} has ${groups.size} distinct "${by}" values in its training split; cannot make ${k} partition shards`,
      );
    }
    // Whole groups only, largest first onto the lightest shard: no key is ever split across shards.
    const entries = [...groups.entries()].map(([key, idx], order) => ({ key, idx, order }));
    entries.sort((a, b) => b.idx.length - a.idx.length || a.order - b.order);
    const bins = Array.from({ length: k }, () => ({
      idx: [] as number[],
      keys: [] as { key: string; order: number }[],
    }));
    for (const e of entries) {
      let best = 0;
      for (let b = 1; b < k; b++) if (bins[b]!.idx.length < bins[best]!.idx.length) best = b;
      bins[best]!.idx.push(...e.idx);
      bins[best]!.keys.push(e);
    }
    // Shards in the order their first key appears in the dataset (chronological for SOTU).
    bins.forEach((b) => b.keys.sort((x, y) => x.order - y.order));
    bins.sort((x, y) => x.keys[0]!.order - y.keys[0]!.order);
    plan.shards = bins.map((b) => b.idx);
    plan.keys = bins.map((b) => b.keys.map((x) => x.key).join(', '));
  } else {
    const alpha = params.alpha ?? DEFAULT_ALPHA;
    if (!(alpha > 0 && Number.isFinite(alpha))) bad(`alpha must be a positive number, got ${alpha}`);
    plan.alpha = alpha;
    if (!allLabelled) {
      throw new DatasetError(
        'E_SHARD_UNLABELLED',
        `the dirichlet scheme needs every record labelled; ${dataset.name} has unlabelled records`,
      );
    }
    const k = params.shards!;
    enough(train.length, k, dataset.name);
    const labels = dataset.labels ?? [...new Set(train.map((i) => dataset.records[i]!.label!))].sort();
    const byLabel = labels.map((l) => train.filter((i) => dataset.records[i]!.label === l));
    for (let attempt = 0; ; attempt++) {
      if (attempt === DIRICHLET_ATTEMPTS) {
        throw new DatasetError(
          'E_SHARD_EMPTY',
          `${DIRICHLET_ATTEMPTS} Dirichlet(${alpha}) draws each left a shard empty; use fewer shards or a larger alpha`,
        );
      }
      const shards: number[][] = Array.from({ length: k }, () => []);
      for (const members of byLabel) {
        const order = rng.shuffle(members.slice());
        const p = rng.dirichlet(alpha, k);
        let cum = 0;
        let start = 0;
        for (let s = 0; s < k; s++) {
          cum += p[s]!;
          const end = s === k - 1 ? order.length : Math.min(order.length, Math.round(cum * order.length));
          shards[s]!.push(...order.slice(start, Math.max(start, end)));
          start = Math.max(start, end);
        }
      }
      if (shards.every((s) => s.length > 0)) {
        plan.shards = shards;
        break;
      }
    }
  }
  plan.shards = plan.shards.map((s) => s.sort((a, b) => a - b));
  return plan;
}

/**
 * Held-out indices: round(fraction * n) records (at least one when fraction > 0 and n > 1), spread over the
 * strata in proportion to their size (largest remainder), chosen at random within each stratum.
 */
function carveEval(n: number, fraction: number, stratumOf: (i: number) => string, rng: Prng): Set<number> {
  let total = Math.round(fraction * n);
  if (fraction > 0 && total === 0 && n > 1) total = 1;
  const strata = new Map<string, number[]>();
  for (let i = 0; i < n; i++) {
    const key = stratumOf(i);
    const s = strata.get(key);
    if (s) s.push(i);
    else strata.set(key, [i]);
  }
  const list = [...strata.values()].map((members, order) => {
    const exact = (members.length * total) / n;
    return { members, order, quota: Math.floor(exact), rest: exact - Math.floor(exact) };
  });
  let left = total - list.reduce((a, s) => a + s.quota, 0);
  for (const s of [...list].sort((a, b) => b.rest - a.rest || a.order - b.order)) {
    if (left <= 0) break;
    if (s.quota < s.members.length) {
      s.quota++;
      left--;
    }
  }
  const out = new Set<number>();
  for (const s of list) for (const i of rng.shuffle(s.members.slice()).slice(0, s.quota)) out.add(i);
  return out;
}

/**
 * Label skew of a plan: the mean over shards of the total-variation distance between the shard's label
 * distribution and the training split's label distribution. 0 when every shard mirrors the whole; it grows
 * toward 1 as shards come to hold single labels (a one-label shard of a label with share p scores 1 - p).
 */
export function labelSkew(dataset: Dataset, plan: ShardPlan): number {
  const labelOf = (i: number) => dataset.records[i]!.label;
  const all = plan.shards.flat();
  const global = distribution(all.map(labelOf));
  let sum = 0;
  for (const shard of plan.shards) {
    const d = distribution(shard.map(labelOf));
    const keys = new Set([...global.keys(), ...d.keys()]);
    let tv = 0;
    for (const k of keys) tv += Math.abs((d.get(k) ?? 0) - (global.get(k) ?? 0));
    sum += tv / 2;
  }
  return sum / plan.shards.length;
}

function distribution(labels: (string | undefined)[]): Map<string, number> {
  const counts = new Map<string, number>();
  let n = 0;
  for (const l of labels) {
    if (l === undefined) continue;
    counts.set(l, (counts.get(l) ?? 0) + 1);
    n++;
  }
  for (const [k, v] of counts) counts.set(k, v / n);
  return counts;
}

function enough(train: number, shards: number, name: string): void {
  if (shards > train) {
    throw new DatasetError(
      'E_SHARD_TOO_MANY',
      `${name} has ${train} training records; cannot make ${shards} non-empty shards`,
    );
  }
}

function bad(message: string): never {
  throw new DatasetError('E_SHARD_BAD_PARAM', message);
}
