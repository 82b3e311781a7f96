// Proposal preparation: everything a proposal's rounds need that does not change between rounds, checked once; a
// proposal that is wrong in itself is refused with a code that fails it on chain.
import type { Strategy } from '../aggregation/index.ts';
import { datasetForManifest, type Dataset, type DatasetManifest } from '../datasets/index.ts';
import { validateConfig, type Model, type ModelConfig } from '../model/index.ts';
import type { Hex32, RoundProposal } from '../pallet-bindings/index.ts';
import { parseUpdateEncoding, proposalSeed, type UpdateEncoding } from '../verify/index.ts';
import { CoordinatorError } from './errors.ts';

export type { UpdateEncoding };

export interface ProposalContext {
  id: number;
  proposal: RoundProposal;
  config: ModelConfig;
  manifest: DatasetManifest;
  dataset: Dataset;
  spec: unknown;
  updateEncoding: UpdateEncoding;
  /** The model the next round starts from and its checkpoint id. */
  current: { id: string; model: Model; round: number } | null;
  /** The strategy carries server state between rounds. */
  strategy: Strategy | null;
  /** Its state when the current round began: the round's aggregate is derived from it. */
  stateBefore: Uint8Array | null;
  /** The seed of server-side noise, fixed by the block that opened the proposal. */
  noiseSeed: number;
  /** The most values an update may decode to: the size of what the strategy aggregates. */
  maxValues: number | null;
  baseEvalLoss: number | null;
  /** Classifiers: round 0's base accuracy on the held-out examples (reported in roundClosed, not on chain). */
  baseAccuracy: number | null;
}

/**
 * Errors that are the proposal's own (a bad config, spec or encoding, a manifest that is not the registered dataset):
 * the proposal is failed on chain at once. Anything else is retried a bounded number of times first.
 */
export const PROPOSAL_FAULTS: ReadonlySet<string> = new Set([
  'E_MODEL_UNKNOWN',
  'E_MODEL_CONFIG',
  'E_MODEL_MISMATCH',
  'E_STRATEGY_SPEC',
  'E_BAD_ENCODING',
  'E_MANIFEST_MISMATCH',
  'E_MANIFEST_URI',
  'E_UNKNOWN_DATASET',
]);

export { parseUpdateEncoding, proposalSeed };

export interface PrepareDependencies {
  /** The registered dataset's manifest, checked against its on-chain root. */
  manifestFor(root: Hex32): Promise<DatasetManifest>;
  /** Local data for datasets that are not built in: dataset root or name → folder or .jsonl path. */
  data?: Record<string, string>;
}

/** Checks a proposal and builds its context; throws a CoordinatorError whose code says whose fault it is. */
export async function prepareProposal(p: RoundProposal, deps: PrepareDependencies): Promise<ProposalContext> {
  if (!('config' in p.round.model)) {
    throw new CoordinatorError(
      'E_MODEL_UNKNOWN',
      'the proposal names its model by hash only; this coordinator needs the config inline',
    );
  }
  let config: ModelConfig;
  try {
    config = validateConfig(JSON.parse(p.round.model.config) as ModelConfig);
  } catch (error) {
    throw new CoordinatorError('E_MODEL_CONFIG', `the model config is invalid: ${(error as Error).message}`);
  }
  const h = p.round.hyperParams;
  let spec: unknown;
  try {
    spec = { name: h.aggregator, options: JSON.parse(h.aggregatorOptions || '{}') as unknown };
  } catch {
    throw new CoordinatorError('E_STRATEGY_SPEC', `aggregator options are not JSON: ${h.aggregatorOptions}`);
  }
  const updateEncoding = parseUpdateEncoding(h.updateEncoding);
  if (typeof updateEncoding === 'string') throw new CoordinatorError('E_BAD_ENCODING', updateEncoding);
  const manifest = await deps.manifestFor(p.round.dataset);
  const local = deps.data?.[p.round.dataset] ?? deps.data?.[manifest.name];
  let dataset: Dataset;
  try {
    dataset = datasetForManifest(manifest, local);
  } catch (error) {
    const code = (error as { code?: string }).code ?? 'E_DATA_MISSING';
    const message =
      code === 'E_DATASET_NOT_LOCAL'
        ? `dataset "${manifest.name}" is not built in and this coordinator holds no copy of it: restart it with --data ${manifest.name}=PATH (a folder of .txt files or a .jsonl file)`
        : (error as Error).message;
    throw new CoordinatorError(code, message);
  }
  return {
    id: p.id,
    proposal: p,
    config,
    manifest,
    dataset,
    spec,
    updateEncoding,
    current: null,
    strategy: null,
    stateBefore: null,
    noiseSeed: 0,
    maxValues: null,
    baseEvalLoss: null,
    baseAccuracy: null,
  };
}
