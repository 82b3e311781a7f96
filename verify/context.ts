// The verifier's first step: what the round is, from the chain and the dataset's manifest (the sources to ask, the
// model config, the update encoding, the dataset, the local training every task carried).
import { DEFAULT_FIT, parseStrategySpec, type FitConfig } from '../aggregation/index.ts';
import { datasetForManifest, fetchManifest, type Dataset, type DatasetManifest } from '../datasets/index.ts';
import { validateConfig, type ModelConfig } from '../model/index.ts';
import type { FinalizedRound, RoundProposal } from '../pallet-bindings/index.ts';
import { parseUpdateEncoding, proposalFit, proposalSpec, type UpdateEncoding } from './derive.ts';
import { originOf } from './fetch.ts';
import { VerifyError, type VerifyRoundParams } from './types.ts';

export interface RoundContext {
  sources: string[];
  config: ModelConfig;
  encoding: UpdateEncoding;
  manifest: DatasetManifest;
  dataset: Dataset;
  fit: FitConfig;
}

export async function roundContext(
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
