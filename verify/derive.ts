// How a round's checkpoint is derived from published inputs: the coordinator closes its rounds with these functions and
// a verifier repeats them. A round's checkpoint is a pure function of the base checkpoint's bytes, the accepted updates
// in updatesRoot leaf order (account order), the proposal's strategy and local training, the strategy's state after the
// previous round, and a noise seed fixed on chain when the proposal opened.
import { createHash } from 'node:crypto';
import {
  CODECS,
  createStrategy,
  decodeClientUpdate,
  type AggregateResult,
  type AnyClientUpdate,
  type CodecName,
  type FitConfig,
  type NamedTensor,
  type Strategy,
} from '../aggregation/index.ts';
import {
  buildManifest,
  checkpointId,
  sha256Hex,
  type CheckpointManifest,
  type JsonValue,
} from '../checkpoints/index.ts';
import { heldOutExamples, type Dataset, type DatasetManifest } from '../datasets/index.ts';
import {
  addLora,
  createModel,
  disposeModel,
  evaluate,
  getWeights,
  modelToSafetensors,
  setWeights,
  trainableNames,
  withClassifierHead,
  type Model,
  type ModelConfig,
} from '../model/index.ts';
import type { RoundProposal } from '../pallet-bindings/index.ts';

export type UpdateEncoding = { codec: CodecName } & Record<string, unknown>;

/** A seed for a proposal's initial weights and LoRA adapters: the same on every restart and for every verifier. */
export function proposalSeed(network: string, proposal: number): number {
  return createHash('sha256').update(`fedtune-init:${network}:${proposal}`).digest().readUInt32LE(0);
}

/**
 * The seed of a round's server-side noise (DP-FedAvg): fixed on chain by the block that opened the proposal, before any
 * update arrives, so the coordinator cannot choose it after seeing the updates and a verifier can repeat it.
 */
export function noiseSeed(network: string, proposal: number, openedAt: number): number {
  return createHash('sha256')
    .update(`fedtune-noise:${network}:${proposal}:${openedAt}`)
    .digest()
    .readUInt32LE(0);
}

/** `dense`, `topk:0.01`, `int8` or a JSON object with `codec`: the proposal's updateEncoding, or why it is not one. */
export function parseUpdateEncoding(text: string): UpdateEncoding | string {
  let value: Record<string, unknown>;
  if (text.trim().startsWith('{')) {
    try {
      value = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return `update encoding ${JSON.stringify(text)} is not valid JSON`;
    }
  } else {
    const [codec, fraction] = text.split(':');
    value = { codec, ...(fraction !== undefined ? { fraction: Number(fraction) } : {}) };
  }
  if (!(CODECS as readonly string[]).includes(String(value.codec)))
    return `update encoding ${JSON.stringify(value.codec)} is not one of ${CODECS.join(', ')}`;
  return value as UpdateEncoding;
}

/** The proposal's strategy spec as written on chain (validated by createStrategy). */
export function proposalSpec(p: RoundProposal): { name: string; options: unknown } {
  const h = p.round.hyperParams;
  return { name: h.aggregator, options: JSON.parse(h.aggregatorOptions || '{}') as unknown };
}

/** The proposal's local training, as the strategy completes it into the round's config. */
export function proposalFit(p: RoundProposal): Partial<FitConfig> {
  const h = p.round.hyperParams;
  return {
    localSteps: h.localSteps,
    batchSize: h.batchSize,
    learningRate: h.learningRate,
    optimiser: h.optimiser === 'sgd' ? 'sgd' : 'adamw',
    fedProxMu: h.fedProxMu,
  };
}

/** A spec with the round's noise seed filled in where the strategy draws noise and the proposal fixed no seed. */
function seeded(spec: unknown, seed: number): unknown {
  const s = spec as { name?: unknown; options?: Record<string, unknown> };
  if (s?.name !== 'dp-fedavg' || (s.options && s.options.seed !== undefined && s.options.seed !== null))
    return spec;
  return { ...s, options: { ...(s.options ?? {}), seed } };
}

/** A strategy for a proposal's rounds over the model's trainable weights, with the noise seed applied. */
export function proposalStrategy(
  spec: unknown,
  model: Model,
  options: { noiseSeed: number; backend?: 'auto' | 'wasm' | 'js' },
): { strategy: Strategy; maxValues: number } {
  const weights = getWeights(model, { names: trainableNames(model) });
  const strategy = createStrategy(seeded(spec, options.noiseSeed), weights, { backend: options.backend });
  return { strategy, maxValues: weights.reduce((n, t) => n + t.data.length, 0) };
}

export interface PublishedUpdate {
  account: string;
  /** Samples the leaf commits (derived from the task). */
  samples: number;
  payload: Uint8Array;
  /** The codec of this payload when it is not the round's (a hierarchical round's cohort aggregates are dense). */
  codec?: string;
}

export interface DerivedAggregate {
  result: AggregateResult;
  /** The strategy's state after the round: its SHA-256 goes into the checkpoint's manifest. */
  state: Uint8Array;
  stateHash: string;
  /** Updates the strategy refused when repeated in leaf order (a coordinator should never have accepted them). */
  refused: { account: string; code: string; message: string }[];
  /** Milliseconds spent decoding and aggregating. */
  ms: number;
}

/**
 * Aggregates a round from scratch: the strategy as it stood after the previous round (restored from its state, or
 * fresh), the round configured, every update decoded and folded in leaf order, then aggregated. The strategy is left
 * holding the new weights and state (the caller owns it).
 */
export function deriveAggregate(params: {
  strategy: Strategy;
  round: number;
  fit: Partial<FitConfig>;
  codec: string;
  maxValues: number;
  updates: readonly PublishedUpdate[];
}): DerivedAggregate {
  const t0 = performance.now();
  const { strategy } = params;
  strategy.configureRound(params.round, params.fit);
  const refused: DerivedAggregate['refused'] = [];
  for (const u of leafOrder(params.updates)) {
    // A top-k payload is folded from its k values (the same bytes as decoded dense: aggregation/kernels/sparse.ts).
    let update: AnyClientUpdate;
    try {
      update = decodeClientUpdate(u.payload, {
        worker: u.account,
        samples: u.samples,
        codec: (u.codec ?? params.codec) as CodecName,
        maxValues: params.maxValues,
      });
    } catch (error) {
      const e = error as { code?: string; message: string };
      refused.push({ account: u.account, code: e.code ?? 'E_UPDATE_MALFORMED', message: e.message });
      continue;
    }
    const verdict = strategy.accept(update);
    if (!verdict.ok) refused.push({ account: u.account, code: verdict.code, message: verdict.reason });
  }
  const result = strategy.aggregate();
  const state = strategy.exportState();
  return { result, state, stateHash: sha256Hex(state), refused, ms: performance.now() - t0 };
}

/** The updatesRoot leaf order: by account. */
export function leafOrder<T extends { account: string }>(updates: readonly T[]): T[] {
  return [...updates].sort((a, b) => (a.account < b.account ? -1 : a.account > b.account ? 1 : 0));
}

/** The checkpoint a round stores: the model's safetensors bytes and the manifest whose hash is its id. */
export function roundCheckpoint(params: {
  model: Model;
  weights: NamedTensor[];
  config: ModelConfig;
  base: string;
  proposal: number;
  round: number;
  stateHash: string | null;
}): {
  bytes: Uint8Array;
  fields: Parameters<typeof buildManifest>[1];
  manifest: CheckpointManifest;
  id: string;
} {
  setWeights(params.model, params.weights, { partial: true });
  const bytes = modelToSafetensors(params.model);
  const fields = {
    model: params.config as unknown as JsonValue,
    parent: params.base,
    proposal: params.proposal,
    round: params.round,
    state: params.stateHash,
  };
  const manifest = buildManifest(bytes, fields);
  return { bytes, fields, manifest, id: checkpointId(manifest) };
}

/** A model's loss on the proposal's held-out examples: the same evenly spaced ones every evaluator scores. */
export async function evaluateHeldOut(
  model: Model,
  dataset: Dataset,
  manifest: DatasetManifest,
  options: { maxExamples?: number } = {},
): Promise<{ loss: number; bitsPerByte?: number; accuracy?: number; examples: number; available: number }> {
  const { examples, available } = heldOutExamples(dataset, manifest, model.config, options);
  const result = await evaluate(model, examples, { batchSize: 32 });
  return {
    loss: result.loss,
    ...(result.bitsPerByte !== undefined ? { bitsPerByte: result.bitsPerByte } : {}),
    ...(result.accuracy !== undefined ? { accuracy: result.accuracy } : {}),
    examples: examples.length,
    available,
  };
}

/**
 * Round 0's base when it is not a checkpoint on chain itself: fresh weights seeded by the proposal (pre-training), or
 * the parent checkpoint's model with fresh seeded LoRA adapters (fine-tuning). Anyone derives the same bytes and id.
 */
export function seededBase(params: {
  config: ModelConfig;
  network: string;
  proposal: number;
  parent: { model: Model; id: string } | null;
}): { model: Model; bytes: Uint8Array; fields: Parameters<typeof buildManifest>[1]; id: string } {
  const seed = proposalSeed(params.network, params.proposal);
  const { parent } = params;
  let model: Model;
  if (parent === null) model = createModel(params.config, { seed });
  else if (parent.model.config.kind === 'lm' && params.config.kind === 'classifier') {
    // A classifier fine-tune of a language model: the same trunk, a seeded head, then the seeded adapters.
    const { lora, ...trunk } = params.config;
    const headed = withClassifierHead(parent.model, trunk, { seed });
    try {
      model = addLora(headed, lora!, { seed });
    } finally {
      disposeModel(headed);
    }
  } else model = addLora(parent.model, params.config.lora!, { seed });
  const bytes = modelToSafetensors(model);
  const fields = {
    model: params.config as unknown as JsonValue,
    parent: parent?.id ?? null,
    proposal: params.proposal,
    round: null,
  };
  return { model, bytes, fields, id: checkpointId(buildManifest(bytes, fields)) };
}
