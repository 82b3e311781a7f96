// `fedtune round verify`: repeats a finalized round from what is on chain and what its sources publish, trusting no
// source. Each step is timed; the first failed check ends the run with a code that names the culprit.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { cryptoWaitReady, signatureVerify } from '@polkadot/util-crypto';
import { DEFAULT_FIT, parseStrategySpec, type FitConfig } from '../aggregation/index.ts';
import {
  CHECKPOINT_FILE,
  downloadCheckpoint,
  httpSource,
  sha256Hex,
  type CheckpointManifest,
} from '../checkpoints/index.ts';
import { datasetForManifest, fetchManifest, type Dataset, type DatasetManifest } from '../datasets/index.ts';
import {
  disposeModel,
  modelFromSafetensors,
  validateConfig,
  type Model,
  type ModelConfig,
} from '../model/index.ts';
import {
  fromHex,
  merkleRoot,
  rewardShares,
  toHex,
  updateLeafHash,
  updatesTree,
  type FinalizedRound,
  type NetworkState,
  type RoundProposal,
} from '../pallet-bindings/index.ts';
import { CodedError } from '../errors/index.ts';
import { updateMessage } from '../proto/index.ts';
import {
  deriveAggregate,
  evaluateHeldOut,
  noiseSeed,
  parseUpdateEncoding,
  proposalFit,
  proposalSpec,
  proposalStrategy,
  roundCheckpoint,
  seededBase,
  type UpdateEncoding,
} from './derive.ts';
import { httpGetBytes, originOf } from './fetch.ts';
import { parsePublication, type PublishedUpdateRecord, type RoundPublication } from './publication.ts';
import { taskSamples } from './task.ts';

/** How far the re-measured held-out loss may be from the committed one: evaluation runs the same examples on the same
 * kernels, so it repeats to the last bits on one backend; the margin covers another machine's wasm SIMD or a GPU. */
export const EVAL_TOLERANCE = 1e-4;
/** The largest update payload fetched (a dense float32 update of a 256 M-parameter model). */
const MAX_UPDATE_BYTES = 1 << 30;
const MAX_PUBLICATION_BYTES = 64 << 20;

export type VerifyCode =
  | 'E_UPDATE_UNAVAILABLE'
  | 'E_UPDATE_HASH'
  | 'E_UPDATE_SIGNATURE'
  | 'E_SHARDS_MISMATCH'
  | 'E_AGGREGATE_MISMATCH'
  | 'E_EVAL_MISMATCH'
  | 'E_REWARD_MISMATCH'
  | 'E_WORK_MISMATCH';

/** A failed check: its code, and the account at fault (a worker, or the round's coordinator). */
export class VerifyFailure extends CodedError {
  declare readonly code: VerifyCode;
  constructor(
    code: VerifyCode,
    message: string,
    readonly culprit: string | null,
  ) {
    super(code, message, { details: { culprit } });
  }
}

/** Why a round cannot be verified at all (not a finding about the round): unknown round, unreachable dataset. */
export class VerifyError extends CodedError {}

export interface VerifyStep {
  step: string;
  ok: boolean;
  ms: number;
  detail: string;
}

export interface WorkCheck {
  account: string;
  ok: boolean;
  /** Relative L2 distance between the published and re-executed update (0: the same bytes). */
  distance: number;
  threshold: number;
  ms: number;
}

export interface VerifyReport {
  ok: boolean;
  proposal: number;
  round: number;
  checkpoint: string;
  code?: VerifyCode;
  culprit?: string | null;
  message?: string;
  updates: number;
  evalLoss?: { committed: number; measured: number; tolerance: number };
  recomputed: WorkCheck[];
  steps: VerifyStep[];
  seconds: number;
}

/** What a re-execution needs: the task rebuilt from public values, the base checkpoint and the worker's records. */
export interface ReexecuteInput {
  proposal: number;
  round: number;
  update: PublishedUpdateRecord;
  payload: Uint8Array;
  baseBytes: Uint8Array;
  config: ModelConfig;
  /** The local training every task of the proposal carried (the seed comes with the task: taskFrame). */
  fit: FitConfig;
  encoding: UpdateEncoding;
  dataset: Dataset;
  manifest: DatasetManifest;
  datasetRoot: string;
  /** The worker's earlier accepted updates of this proposal (for codecs whose state carries across rounds). */
  earlier: { round: number; update: PublishedUpdateRecord; baseBytes: Uint8Array }[];
}

export type Reexecute = (
  input: ReexecuteInput,
) => Promise<{ ok: boolean; distance: number; threshold: number; detail?: string }>;

export interface VerifyRoundParams {
  /** The network's protocol state, read from the chain by the caller. */
  net: NetworkState;
  network: string;
  proposal: number;
  round: number;
  /** Hash of a block by number (the randomness that picks contributions to re-execute). */
  blockHash(n: number): Promise<string>;
  /** Base URLs beside the one on chain that serve /rounds, /blobs and /checkpoints. */
  sources?: string[];
  /** Contributions to re-execute (0: none). */
  recompute?: number;
  reexecute?: Reexecute;
  /** Kernels that aggregate: any gives the same bytes. */
  backend?: 'auto' | 'wasm' | 'js';
  /** A local copy of a dataset that is not built in. */
  data?: string;
  cacheDir: string;
  logger: Logger;
  onStep?: (step: VerifyStep) => void;
}

export async function verifyRound(params: VerifyRoundParams): Promise<VerifyReport> {
  const t0 = performance.now();
  const steps: VerifyStep[] = [];
  const recomputed: WorkCheck[] = [];
  const { net } = params;
  const p = net.proposals[params.proposal] as RoundProposal | undefined;
  if (!p || p.type !== 'round')
    throw new VerifyError(
      'E_UNKNOWN_PROPOSAL',
      `proposal ${params.proposal} is not a round proposal of this network`,
    );
  const f = p.finalized[params.round];
  if (!f)
    throw new VerifyError(
      'E_NOT_FINALIZED',
      `round ${params.round} of proposal ${params.proposal} is not finalized (${p.finalized.length} round(s) are)`,
    );
  const report: VerifyReport = {
    ok: false,
    proposal: params.proposal,
    round: params.round,
    checkpoint: f.checkpoint.id,
    updates: 0,
    recomputed,
    steps,
    seconds: 0,
  };
  const step = async <T>(name: string, run: () => Promise<{ value: T; detail: string }>): Promise<T> => {
    const s0 = performance.now();
    try {
      const { value, detail } = await run();
      const done = { step: name, ok: true, ms: performance.now() - s0, detail };
      steps.push(done);
      params.onStep?.(done);
      return value;
    } catch (error) {
      const failed = { step: name, ok: false, ms: performance.now() - s0, detail: (error as Error).message };
      steps.push(failed);
      params.onStep?.(failed);
      throw error;
    }
  };
  const models: Model[] = [];
  try {
    const ctx = await step('context', () => roundContext(params, p, f));
    const publication = await step('publication', () => fetchPublication(params, f, ctx));
    report.updates = publication.updates.length;
    await step('signatures', () => checkSignatures(params, f, publication));
    await step('rules', () => checkRules(p, f, publication, ctx));
    const payloads = await step('updates', () => fetchPayloads(ctx.sources, publication, f));
    const base = await step('base', () => loadBase(params, p, publication, ctx));
    models.push(base.model);
    await step('aggregate', () => checkAggregate(params, p, f, publication, payloads, base, ctx));
    report.evalLoss = await step('evaluate', () => checkEval(f, base.model, ctx));
    if ((params.recompute ?? 0) > 0)
      await step('re-execute', () => recompute(params, p, f, publication, payloads, base, ctx, recomputed));
    report.ok = true;
  } catch (error) {
    if (!(error instanceof VerifyFailure)) throw error;
    report.code = error.code;
    report.culprit = error.culprit;
    report.message = error.message;
  } finally {
    for (const m of models) disposeModel(m);
    report.seconds = (performance.now() - t0) / 1000;
  }
  return report;
}

interface RoundContext {
  sources: string[];
  config: ModelConfig;
  encoding: UpdateEncoding;
  manifest: DatasetManifest;
  dataset: Dataset;
  fit: FitConfig;
}

async function roundContext(
  params: VerifyRoundParams,
  p: RoundProposal,
  f: FinalizedRound,
): Promise<{ value: RoundContext; detail: string }> {
  const sources = [
    ...new Set(
      [originOf(f.checkpoint.uri), ...(params.sources ?? []).map((s) => originOf(s) ?? s)].filter(
        (s): s is string => s !== null,
      ),
    ),
  ];
  if (!('config' in p.round.model))
    throw new VerifyError(
      'E_MODEL_UNKNOWN',
      'the proposal names its model by hash only; its config is needed',
    );
  const config = validateConfig(JSON.parse(p.round.model.config) as ModelConfig);
  const encoding = parseUpdateEncoding(p.round.hyperParams.updateEncoding);
  if (typeof encoding === 'string') throw new VerifyError('E_BAD_ENCODING', encoding);
  const registered = params.net.datasets[p.round.dataset];
  if (!registered) throw new VerifyError('E_UNKNOWN_DATASET', `dataset ${p.round.dataset} is not registered`);
  const manifest = await fetchManifest(registered.manifestUri, p.round.dataset);
  const dataset = datasetForManifest(manifest, params.data);
  // The round's local training as every task carried it: the strategy completes the proposal's.
  const probe = proposalStrategyFit(p);
  return {
    value: { sources, config, encoding, manifest, dataset, fit: probe },
    detail: `${sources.length} source(s): ${sources.join(', ') || 'none'}`,
  };
}

/** FitConfig as the strategy completes it in configureRound (the one source of every task's local training). */
function proposalStrategyFit(p: RoundProposal): FitConfig {
  const spec = parseStrategySpec(proposalSpec(p));
  const fit = proposalFit(p);
  const mu = spec.options.fedProxMu;
  return { ...DEFAULT_FIT, ...fit, fedProxMu: mu > 0 ? mu : (fit.fedProxMu ?? 0) };
}

async function fetchPublication(
  params: VerifyRoundParams,
  f: FinalizedRound,
  ctx: RoundContext,
): Promise<{ value: RoundPublication; detail: string }> {
  const problems: string[] = [];
  for (const source of ctx.sources) {
    let bytes: Uint8Array | null;
    try {
      bytes = await httpGetBytes(`${source}/rounds/${params.proposal}/${params.round}`, {
        maxBytes: MAX_PUBLICATION_BYTES,
      });
    } catch (error) {
      problems.push(`${source}: ${(error as Error).message}`);
      continue;
    }
    if (bytes === null) {
      problems.push(`${source}: not published there`);
      continue;
    }
    const pub = parsePublication(new TextDecoder().decode(bytes));
    const leaves = pub.updates.map((u) => ({
      account: u.account,
      updateHash: updateLeafHash({
        proposal: params.proposal,
        round: params.round,
        account: u.account,
        samples: u.samples,
        payloadSha256: fromHex(u.payloadSha256),
      }),
    }));
    const root = updatesTree(leaves).root;
    const sameHeader =
      pub.network === params.network &&
      pub.proposal === params.proposal &&
      pub.round === params.round &&
      pub.coordinator === f.coordinator &&
      pub.codec === ctx.encoding.codec;
    if (
      !sameHeader ||
      root !== f.updatesRoot ||
      new Set(pub.updates.map((u) => u.account)).size !== leaves.length
    ) {
      // Another source may serve the true record; if none does, the committed root has no published updates.
      problems.push(
        `${source}: its ${pub.updates.length} update(s) hash to ${root}, not the committed updatesRoot ${f.updatesRoot}`,
      );
      continue;
    }
    return { value: pub, detail: `${pub.updates.length} update(s) under updatesRoot, from ${source}` };
  }
  const hashed = problems.some((m) => m.includes('hash to'));
  throw new VerifyFailure(
    hashed ? 'E_UPDATE_HASH' : 'E_UPDATE_UNAVAILABLE',
    `no source serves the updates under updatesRoot ${f.updatesRoot}: ${problems.join('; ') || 'no sources'}`,
    f.coordinator,
  );
}

async function checkSignatures(
  params: VerifyRoundParams,
  f: FinalizedRound,
  pub: RoundPublication,
): Promise<{ value: void; detail: string }> {
  await cryptoWaitReady();
  for (const u of pub.updates) {
    const message = updateMessage({
      network: params.network,
      coordinator: f.coordinator,
      proposal: params.proposal,
      round: params.round,
      samples: u.samples,
      payloadBytes: u.payloadBytes,
      base: pub.base,
      codec: pub.codec,
      shards: u.shards,
      payloadSha256: fromHex(u.payloadSha256),
    });
    let valid: boolean;
    try {
      valid = signatureVerify(message, Buffer.from(u.signature.slice(2), 'hex'), u.account).isValid;
    } catch {
      valid = false;
    }
    if (!valid)
      throw new VerifyFailure(
        'E_UPDATE_SIGNATURE',
        `the update of ${u.account} is not signed by it: the coordinator accepted or published a forged update`,
        f.coordinator,
      );
  }
  return { value: undefined, detail: `${pub.updates.length} worker signature(s) valid` };
}

async function checkRules(
  p: RoundProposal,
  f: FinalizedRound,
  pub: RoundPublication,
  ctx: RoundContext,
): Promise<{ value: void; detail: string }> {
  const samples = taskSamples(ctx.fit);
  const byAccount = new Map(pub.updates.map((u) => [u.account, u]));
  for (const u of pub.updates)
    if (u.samples !== samples)
      throw new VerifyFailure(
        'E_REWARD_MISMATCH',
        `the update of ${u.account} counts ${u.samples} samples; every task of this round is ${samples} (local steps × batch size)`,
        f.coordinator,
      );
  for (const c of f.contributors) {
    const u = byAccount.get(c.account);
    if (!u)
      throw new VerifyFailure(
        'E_REWARD_MISMATCH',
        `contributor ${c.account} has no update under updatesRoot`,
        f.coordinator,
      );
    if (c.samples !== u.samples)
      throw new VerifyFailure(
        'E_REWARD_MISMATCH',
        `contributor ${c.account} is credited ${c.samples} samples; its update is ${u.samples}`,
        f.coordinator,
      );
    const same = c.shards.length === u.shards.length && c.shards.every((s, i) => s === u.shards[i]);
    if (!same || u.shards.some((s) => s >= ctx.manifest.shards.length))
      throw new VerifyFailure(
        'E_SHARDS_MISMATCH',
        `contributor ${c.account} is credited shards [${c.shards}]; it signed an update for shards [${u.shards}] of ${ctx.manifest.shards.length}`,
        f.coordinator,
      );
  }
  const shardLeaves = [...new Set(f.contributors.flatMap((c) => c.shards))]
    .sort((a, b) => a - b)
    .map((s) => fromHex(ctx.manifest.shards[s]!.leaf));
  const shardsRoot = shardLeaves.length > 0 ? toHex(merkleRoot(shardLeaves)) : `0x${'0'.repeat(64)}`;
  if (shardsRoot !== f.datasetShardsRoot)
    throw new VerifyFailure(
      'E_SHARDS_MISMATCH',
      `the contributors' shards hash to ${shardsRoot}, not the committed datasetShardsRoot ${f.datasetShardsRoot}`,
      f.coordinator,
    );
  const shares = rewardShares(p.round.rewardPerRound || '0', f.contributors);
  for (const r of f.rewards) {
    const due = shares.get(r.account);
    if (due === undefined || BigInt(r.amount) !== due)
      throw new VerifyFailure(
        'E_REWARD_MISMATCH',
        `${r.account} was paid ${r.amount}; the rules give it ${due ?? 0n}`,
        f.coordinator,
      );
  }
  return {
    value: undefined,
    detail: `${f.contributors.length} contributor(s): samples, shards, shards root and ${f.rewards.length} reward(s) follow the rules`,
  };
}

async function fetchPayloads(
  sources: string[],
  pub: RoundPublication,
  f: FinalizedRound,
): Promise<{ value: Map<string, Uint8Array>; detail: string }> {
  const out = new Map<string, Uint8Array>();
  let bytes = 0;
  for (const u of pub.updates) {
    const { body, problems } = await fetchBlob(
      sources,
      u.payloadSha256,
      Math.min(MAX_UPDATE_BYTES, u.payloadBytes),
    );
    if (!body)
      throw new VerifyFailure(
        'E_UPDATE_UNAVAILABLE',
        `no source serves the update of ${u.account} (${u.payloadSha256}): ${problems.join('; ') || 'no sources'}`,
        f.coordinator,
      );
    out.set(u.account, body);
    bytes += body.length;
  }
  return {
    value: out,
    detail: `${out.size} payload(s), ${(bytes / 1e6).toFixed(2)} MB, each matching its leaf`,
  };
}

interface Base {
  model: Model;
  bytes: Uint8Array;
  state: Uint8Array | null;
}

async function checkpointFrom(
  id: string,
  sources: string[],
  params: VerifyRoundParams,
): Promise<{ bytes: Uint8Array; manifest: CheckpointManifest }> {
  const outDir = join(params.cacheDir, id.slice(2));
  const record = params.net.checkpoints[id as `0x${string}`];
  const { manifest } = await downloadCheckpoint({
    id,
    sources: [...(record ? [httpSource(record.uri)] : []), ...sources.map((s) => httpSource(s))],
    outDir,
    logger: params.logger,
  });
  return { bytes: new Uint8Array(await readFile(join(outDir, CHECKPOINT_FILE))), manifest };
}

async function loadBase(
  params: VerifyRoundParams,
  p: RoundProposal,
  pub: RoundPublication,
  ctx: RoundContext,
): Promise<{ value: Base; detail: string }> {
  const coordinator = p.finalized[params.round]!.coordinator;
  const mismatch = (why: string): never => {
    throw new VerifyFailure('E_AGGREGATE_MISMATCH', why, coordinator);
  };
  if (params.round > 0) {
    const id = p.finalized[params.round - 1]!.checkpoint.id;
    if (pub.base !== id)
      mismatch(
        `the round's updates were made on ${pub.base}, not round ${params.round - 1}'s checkpoint ${id}`,
      );
    const { bytes, manifest } = await checkpointFrom(id, ctx.sources, params);
    let state: Uint8Array | null = null;
    if (manifest.state) {
      const fetched = await fetchBlob(ctx.sources, manifest.state, MAX_UPDATE_BYTES);
      if (!fetched.body)
        throw new VerifyFailure(
          'E_UPDATE_UNAVAILABLE',
          `no source serves the strategy state ${manifest.state} that checkpoint ${id} names: ${fetched.problems.join('; ') || 'no sources'}`,
          coordinator,
        );
      state = fetched.body;
    }
    // Whether the round started from this state is checked with the aggregate (the publication's stateBefore).
    return {
      value: { model: modelFromSafetensors(bytes, ctx.config), bytes, state },
      detail: `base ${id} (${bytes.length} bytes)${manifest.state ? `, strategy state ${manifest.state.slice(0, 10)}…` : ''}`,
    };
  }
  // Round 0: the base is derived from public values (a seeded init, or the parent with seeded adapters).
  let parent: { model: Model; id: string } | null = null;
  if (p.round.kind !== 'Pretrain') {
    const parentId = p.round.baseCheckpoint!;
    const { bytes } = await checkpointFrom(parentId, ctx.sources, params);
    const model = modelFromSafetensors(bytes);
    if (ctx.config.lora === undefined || model.config.lora !== undefined) {
      if (pub.base !== parentId)
        mismatch(`round 0 must start from the certified parent ${parentId}, not ${pub.base}`);
      return { value: { model, bytes, state: null }, detail: `base: the certified parent ${parentId}` };
    }
    parent = { model, id: parentId };
  }
  const seeded = seededBase({
    config: ctx.config,
    network: params.network,
    proposal: params.proposal,
    parent,
  });
  if (parent) disposeModel(parent.model);
  if (seeded.id !== pub.base) {
    disposeModel(seeded.model);
    mismatch(`round 0 must start from the seeded base ${seeded.id}, not ${pub.base}`);
  }
  return {
    value: { model: seeded.model, bytes: seeded.bytes, state: null },
    detail: `base ${seeded.id}, derived from the proposal's seed`,
  };
}

/** A blob from the first source that serves bytes hashing to its name; what each other source did, otherwise. */
async function fetchBlob(
  sources: string[],
  hash: string,
  maxBytes: number,
): Promise<{ body: Uint8Array | null; problems: string[] }> {
  const problems: string[] = [];
  for (const source of sources) {
    let body: Uint8Array | null;
    try {
      body = await httpGetBytes(`${source}/blobs/${hash}`, { maxBytes });
    } catch (error) {
      problems.push(`${source}: ${(error as Error).message}`);
      continue;
    }
    if (body === null) problems.push(`${source}: not there`);
    else if (sha256Hex(body) !== hash) problems.push(`${source}: served other bytes`);
    else return { body, problems };
  }
  return { body: null, problems };
}

async function checkAggregate(
  params: VerifyRoundParams,
  p: RoundProposal,
  f: FinalizedRound,
  pub: RoundPublication,
  payloads: Map<string, Uint8Array>,
  base: Base,
  ctx: RoundContext,
): Promise<{ value: void; detail: string }> {
  const { strategy, maxValues } = proposalStrategy(proposalSpec(p), base.model, {
    noiseSeed: noiseSeed(params.network, params.proposal, p.openedAt ?? 0),
    backend: params.backend,
  });
  try {
    if (base.state) strategy.restoreState(base.state);
    const stateBefore = sha256Hex(strategy.exportState());
    if (pub.stateBefore !== null && pub.stateBefore !== stateBefore)
      throw new VerifyFailure(
        'E_AGGREGATE_MISMATCH',
        `the round claims to start from strategy state ${pub.stateBefore}; the base gives ${stateBefore}`,
        f.coordinator,
      );
    const derived = deriveAggregate({
      strategy,
      round: params.round,
      fit: proposalFit(p),
      codec: ctx.encoding.codec,
      maxValues,
      updates: pub.updates.map((u) => ({
        account: u.account,
        samples: u.samples,
        payload: payloads.get(u.account)!,
      })),
    });
    const checkpoint = roundCheckpoint({
      model: base.model,
      weights: derived.result.weights,
      config: ctx.config,
      base: pub.base,
      proposal: params.proposal,
      round: params.round,
      stateHash: derived.stateHash,
    });
    if (checkpoint.id !== f.checkpoint.id)
      throw new VerifyFailure(
        'E_AGGREGATE_MISMATCH',
        `the published updates aggregate to checkpoint ${checkpoint.id}; the coordinator committed ${f.checkpoint.id}`,
        f.coordinator,
      );
    const included = new Set(derived.result.included);
    const credited = new Set(f.contributors.map((c) => c.account));
    const differs = included.size !== credited.size || [...included].some((a) => !credited.has(a));
    if (differs)
      throw new VerifyFailure(
        'E_REWARD_MISMATCH',
        `the aggregate includes [${[...included].join(', ')}]; the chain credits [${[...credited].join(', ')}]`,
        f.coordinator,
      );
    return {
      value: undefined,
      detail: `${pub.updates.length} update(s) in leaf order → ${checkpoint.id} (${strategy.backend} kernels, ${derived.ms.toFixed(0)} ms)`,
    };
  } finally {
    strategy.dispose();
  }
}

async function checkEval(
  f: FinalizedRound,
  model: Model,
  ctx: RoundContext,
): Promise<{ value: { committed: number; measured: number; tolerance: number }; detail: string }> {
  const examples = f.metrics.extra.find((m) => m.name === 'evalExamples')?.value;
  const { loss } = await evaluateHeldOut(model, ctx.dataset, ctx.manifest, {
    ...(examples !== undefined ? { maxExamples: examples } : {}),
  });
  const committed = f.metrics.evalLoss;
  const value = { committed, measured: loss, tolerance: EVAL_TOLERANCE };
  if (!(Math.abs(loss - committed) <= EVAL_TOLERANCE))
    throw new VerifyFailure(
      'E_EVAL_MISMATCH',
      `the checkpoint's held-out loss is ${loss.toFixed(6)}; the coordinator committed ${committed.toFixed(6)} (tolerance ${EVAL_TOLERANCE})`,
      f.coordinator,
    );
  return {
    value,
    detail: `held-out loss ${loss.toFixed(6)} on ${examples ?? 'the default'} example(s), committed ${committed.toFixed(6)}`,
  };
}

/**
 * The contributions to re-execute: ordered by SHA-256 of the finalizeRound block's hash and the account. The block was
 * made after every upload, so no worker could know whether its update would be re-run.
 */
export function pickForRecompute(blockHash: string, accounts: readonly string[], k: number): string[] {
  return accounts
    .map((a) => ({ a, h: createHash('sha256').update(`fedtune-recompute:${blockHash}:${a}`).digest('hex') }))
    .sort((x, y) => (x.h < y.h ? -1 : x.h > y.h ? 1 : 0))
    .slice(0, k)
    .map((x) => x.a);
}

/**
 * Top-k codecs: the worker's contributions to the consecutive rounds just before this one, oldest first, with what
 * re-executing each needs (its published record, its round's base, its seed). Under the residual rule (docs/model.md,
 * "Reproducible training") they rebuild the error-feedback residual the worker carried into this round. Else none.
 */
async function earlierContributions(
  params: VerifyRoundParams,
  p: RoundProposal,
  ctx: RoundContext,
  account: string,
): Promise<ReexecuteInput['earlier']> {
  if (ctx.encoding.codec !== 'topk' && ctx.encoding.codec !== 'topk-int8') return [];
  const rounds: number[] = [];
  for (let q = params.round - 1; q >= 0; q--) {
    if (!p.finalized[q]?.contributors.some((c) => c.account === account)) break;
    rounds.unshift(q);
  }
  const out: ReexecuteInput['earlier'] = [];
  for (const q of rounds) {
    const at = { ...params, round: q };
    const { value: pub } = await fetchPublication(at, p.finalized[q]!, ctx);
    const update = pub.updates.find((u) => u.account === account);
    if (!update)
      throw new VerifyFailure(
        'E_UPDATE_UNAVAILABLE',
        `round ${q}'s published updates lack ${account}, a contributor on chain`,
        p.finalized[q]!.coordinator,
      );
    const { value: base } = await loadBase(at, p, pub, ctx);
    disposeModel(base.model);
    out.push({ round: q, update, baseBytes: base.bytes });
  }
  return out;
}

async function recompute(
  params: VerifyRoundParams,
  p: RoundProposal,
  f: FinalizedRound,
  pub: RoundPublication,
  payloads: Map<string, Uint8Array>,
  base: Base,
  ctx: RoundContext,
  out: WorkCheck[],
): Promise<{ value: void; detail: string }> {
  if (!params.reexecute) throw new VerifyError('E_NO_REEXECUTE', 'this verifier cannot re-execute tasks');
  const chosen = pickForRecompute(
    await params.blockHash(f.block),
    f.contributors.map((c) => c.account),
    params.recompute ?? 0,
  );
  for (const account of chosen) {
    const update = pub.updates.find((u) => u.account === account)!;
    const s0 = performance.now();
    const result = await params.reexecute({
      proposal: params.proposal,
      round: params.round,
      update,
      payload: payloads.get(account)!,
      baseBytes: base.bytes,
      config: ctx.config,
      fit: ctx.fit,
      encoding: ctx.encoding,
      dataset: ctx.dataset,
      manifest: ctx.manifest,
      datasetRoot: p.round.dataset,
      earlier: await earlierContributions(params, p, ctx, account),
    });
    out.push({
      account,
      ok: result.ok,
      distance: result.distance,
      threshold: result.threshold,
      ms: performance.now() - s0,
    });
    if (!result.ok)
      throw new VerifyFailure(
        'E_WORK_MISMATCH',
        `re-executing ${account}'s task gives an update at relative distance ${result.distance.toPrecision(3)} from the one it published (threshold ${result.threshold})${result.detail ? `: ${result.detail}` : ''}`,
        account,
      );
  }
  return {
    value: undefined,
    detail: `${chosen.length} of ${f.contributors.length} contribution(s) re-executed: ${out.map((w) => `${w.account.slice(0, 8)}… ${w.distance.toPrecision(2)}`).join(', ')}`,
  };
}
