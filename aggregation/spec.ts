// The strategy spec as it travels in a round's on-chain hyper-parameters: a plain JSON object, parsed and validated with coded errors.
import { fail } from './errors.ts';

export const STRATEGY_NAMES = [
  'fedavg',
  'fedavgm',
  'fedadam',
  'fedyogi',
  'fedadagrad',
  'median',
  'trimmed-mean',
  'krum',
  'multi-krum',
  'dp-fedavg',
] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

/** Norm clipping before aggregation: a fixed bound, or multiplier x the median norm (the round's own for rules that hold every update, the previous round's for streaming ones). */
export type ClipSpec =
  { mode: 'fixed'; norm: number } | { mode: 'adaptive'; multiplier: number; initial: number | null };

/** Every option, resolved with its default; which ones a strategy takes is in OPTION_KEYS. */
export interface StrategyOptions {
  /** Server learning rate applied to the aggregated delta (FedAdam & co.: eta). */
  serverLr: number;
  /** Updates whose L2 norm exceeds this are rejected (before clipping); null: no bound. */
  maxNorm: number | null;
  clip: ClipSpec | null;
  /** FedProx proximal term mu, sent to workers in the round config; the server does nothing else for FedProx. */
  fedProxMu: number;
  /** Fewest accepted updates aggregate() will work with. */
  minUpdates: number;
  /** fedavgm: server momentum. */
  momentum: number;
  /** fedadam/fedyogi/fedadagrad: first-moment decay, second-moment decay, adaptivity tau. */
  beta1: number;
  beta2: number;
  tau: number;
  /** trimmed-mean: fraction trimmed from each end. */
  beta: number;
  /** krum/multi-krum: Byzantine workers tolerated. */
  f: number;
  /** multi-krum: updates averaged (null: n - f). */
  m: number | null;
  /** dp-fedavg */
  clipNorm: number;
  noiseMultiplier: number;
  samplingRate: number;
  delta: number;
  expectedClients: number | null;
  seed: number | null;
}

export interface StrategySpec {
  name: StrategyName;
  options: StrategyOptions;
}

const COMMON = ['serverLr', 'maxNorm', 'clip', 'fedProxMu', 'minUpdates'] as const;
const OPT = ['beta1', 'beta2', 'tau'] as const;
export const OPTION_KEYS: Record<StrategyName, readonly (keyof StrategyOptions)[]> = {
  fedavg: COMMON,
  fedavgm: [...COMMON, 'momentum'],
  fedadam: [...COMMON, ...OPT],
  fedyogi: [...COMMON, ...OPT],
  fedadagrad: [...COMMON, ...OPT],
  median: COMMON,
  'trimmed-mean': [...COMMON, 'beta'],
  krum: [...COMMON, 'f'],
  'multi-krum': [...COMMON, 'f', 'm'],
  'dp-fedavg': [
    'serverLr',
    'maxNorm',
    'fedProxMu',
    'minUpdates',
    'clipNorm',
    'noiseMultiplier',
    'samplingRate',
    'delta',
    'expectedClients',
    'seed',
  ],
};

const ADAPTIVE = new Set<StrategyName>(['fedadam', 'fedyogi', 'fedadagrad']);

/**
 * The default norm bound: each update is clipped to DEFAULT_CLIP_MULTIPLIER times the median norm (of the round's own
 * updates for rules that hold them all, of the previous round's for streaming ones), so one scaled update cannot
 * outweigh the rest whatever the model's scale. `"clip": null` turns it off; bench/byzantine.ts measures the choice.
 */
export const DEFAULT_CLIP_MULTIPLIER = 2;
const DEFAULT_CLIP: ClipSpec = { mode: 'adaptive', multiplier: DEFAULT_CLIP_MULTIPLIER, initial: null };

function defaults(name: StrategyName): StrategyOptions {
  return {
    serverLr: ADAPTIVE.has(name) ? 0.01 : 1,
    maxNorm: null,
    clip: DEFAULT_CLIP,
    fedProxMu: 0,
    minUpdates: 1,
    momentum: 0.9,
    beta1: name === 'fedadagrad' ? 0 : 0.9,
    beta2: 0.99,
    tau: 1e-3,
    beta: 0.1,
    f: 0,
    m: null,
    clipNorm: NaN,
    noiseMultiplier: NaN,
    samplingRate: NaN,
    delta: 1e-5,
    expectedClients: null,
    seed: null,
  };
}

const REQUIRED: Partial<Record<StrategyName, (keyof StrategyOptions)[]>> = {
  krum: ['f'],
  'multi-krum': ['f'],
  'dp-fedavg': ['clipNorm', 'noiseMultiplier', 'samplingRate'],
};

type Check = (v: unknown) => string | null;
const num =
  (lo: number, hi: number, { loOpen = false, hiOpen = false, int = false } = {}): Check =>
  (v) => {
    if (typeof v !== 'number' || !Number.isFinite(v)) return 'a finite number';
    if (int && !Number.isInteger(v)) return 'an integer';
    if (loOpen ? v <= lo : v < lo) return `${loOpen ? '>' : '>='} ${lo}`;
    if (hiOpen ? v >= hi : v > hi) return `${hiOpen ? '<' : '<='} ${hi}`;
    return null;
  };
const orNull =
  (c: Check): Check =>
  (v) =>
    v === null ? null : c(v);
const positive = num(0, Infinity, { loOpen: true });
const unit = num(0, 1, { hiOpen: true });

const CHECKS: Record<Exclude<keyof StrategyOptions, 'clip'>, Check> = {
  serverLr: positive,
  maxNorm: orNull(positive),
  fedProxMu: num(0, Infinity),
  minUpdates: num(1, 1e9, { int: true }),
  momentum: unit,
  beta1: unit,
  beta2: unit,
  tau: positive,
  beta: num(0, 0.5, { hiOpen: true }),
  f: num(0, 1e6, { int: true }),
  m: orNull(num(1, 1e9, { int: true })),
  clipNorm: positive,
  noiseMultiplier: positive,
  samplingRate: num(0, 1, { loOpen: true }),
  delta: num(0, 1, { loOpen: true, hiOpen: true }),
  expectedClients: orNull(positive),
  seed: orNull(num(0, 2 ** 32 - 1, { int: true })),
};

function parseClip(v: unknown): ClipSpec | null {
  if (v === null) return null;
  const bad = (why: string): never =>
    fail(
      'E_STRATEGY_SPEC',
      `option "clip" ${why}; expected null, {"mode":"fixed","norm":N} or {"mode":"adaptive","multiplier":M,"initial"?:N}`,
    );
  if (typeof v !== 'object' || Array.isArray(v)) return bad('is not an object');
  const o = v as Record<string, unknown>;
  if (o.mode === 'fixed') {
    for (const k of Object.keys(o)) if (k !== 'mode' && k !== 'norm') bad(`has an unknown key "${k}"`);
    if (positive(o.norm) !== null) bad('needs a positive finite "norm"');
    return { mode: 'fixed', norm: o.norm as number };
  }
  if (o.mode === 'adaptive') {
    for (const k of Object.keys(o))
      if (!['mode', 'multiplier', 'initial'].includes(k)) bad(`has an unknown key "${k}"`);
    const multiplier = o.multiplier ?? 1;
    if (positive(multiplier) !== null) bad('needs a positive finite "multiplier"');
    const initial = o.initial ?? null;
    if (orNull(positive)(initial) !== null) bad('has an invalid "initial" bound');
    return { mode: 'adaptive', multiplier: multiplier as number, initial: initial as number | null };
  }
  return bad(`has an unknown mode ${JSON.stringify(o.mode)}`);
}

/**
 * Validates a strategy spec from untrusted JSON (a round's on-chain hyper-parameters) and fills in defaults.
 * Throws AggregationError E_STRATEGY_SPEC saying which field is wrong and what was expected.
 */
export function parseStrategySpec(input: unknown): StrategySpec {
  if (typeof input === 'object' && input !== null && parsed.has(input)) return input as StrategySpec;
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    fail('E_STRATEGY_SPEC', 'a strategy spec must be an object {"name": …, "options": {…}}');
  }
  const raw = input as Record<string, unknown>;
  for (const k of Object.keys(raw)) {
    if (k !== 'name' && k !== 'options')
      fail('E_STRATEGY_SPEC', `unknown key "${k}" in strategy spec; expected "name" and "options"`);
  }
  const name = raw.name;
  if (typeof name !== 'string' || !(STRATEGY_NAMES as readonly string[]).includes(name)) {
    fail(
      'E_STRATEGY_SPEC',
      `unknown strategy ${JSON.stringify(name)}; expected one of ${STRATEGY_NAMES.join(', ')}`,
    );
  }
  const n = name as StrategyName;
  const given = raw.options ?? {};
  if (typeof given !== 'object' || given === null || Array.isArray(given))
    fail('E_STRATEGY_SPEC', `"options" of ${n} must be an object`);
  const options = defaults(n);
  const allowed = OPTION_KEYS[n];
  for (const [k, v] of Object.entries(given as Record<string, unknown>)) {
    if (!(allowed as readonly string[]).includes(k)) {
      fail('E_STRATEGY_SPEC', `${n} takes no option "${k}"; it takes ${allowed.join(', ')}`);
    }
    if (k === 'clip') {
      options.clip = parseClip(v);
      continue;
    }
    const why = CHECKS[k as Exclude<keyof StrategyOptions, 'clip'>](v);
    if (why !== null)
      fail('E_STRATEGY_SPEC', `option "${k}" of ${n} is ${JSON.stringify(v)}; expected ${why}`);
    (options as unknown as Record<string, unknown>)[k] = v;
  }
  for (const k of REQUIRED[n] ?? []) {
    if (!(k in (given as object))) fail('E_STRATEGY_SPEC', `${n} needs option "${k}"`);
  }
  if (n === 'multi-krum' && options.m !== null && options.m < 1)
    fail('E_STRATEGY_SPEC', 'multi-krum "m" must be >= 1');
  const spec = { name: n, options };
  parsed.add(spec);
  return spec;
}

/** Specs this module produced, so parsing one again is a no-op. */
const parsed = new WeakSet<object>();

/** The spec as the plain object to put on chain: only the options a strategy takes. */
export function specToJSON(spec: StrategySpec): { name: StrategyName; options: Record<string, unknown> } {
  const options: Record<string, unknown> = {};
  for (const k of OPTION_KEYS[spec.name]) options[k] = spec.options[k];
  return { name: spec.name, options };
}
