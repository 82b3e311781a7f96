// What the chain's protocol state alone says about checkpoints: the committed ones with their attestations (the list),
// and where one came from (its provenance): its round and each parent's back to pre-training from scratch, with the
// datasets and their roots, the contributors and rewards, the metrics and the blocks.
import type { Hex32, NetworkState, RoundProposal } from '../pallet-bindings/index.ts';
import { CheckpointError } from './errors.ts';

/** The network state this module reads: pallet-bindings' own type (a type import; checkpoints/ loads no chain client). */
export type ProvenanceNetwork = NetworkState;

export interface ProvenanceRound {
  checkpoint: string;
  proposal: number;
  kind: RoundKind;
  round: number;
  /** The checkpoint this round started from (null: weights initialised from scratch). */
  parent: string | null;
  block: number;
  blockHash: string;
  coordinator: string;
  dataset: {
    name: string;
    root: string;
    records: number;
    shards: number;
    license: string;
    source: string;
    manifestUri: string;
  };
  contributors: { account: string; samples: number; shards: number[] }[];
  rewards: { account: string; amount: string }[];
  updatesRoot: string;
  datasetShardsRoot: string;
  metrics: { trainLoss: number; evalLoss: number; [name: string]: number };
  hyperParams: object;
}

export interface Provenance {
  version: 1;
  genesisHash: string;
  network: { id: string; name: string; members: string[] };
  checkpoint: {
    id: string;
    bytes: number;
    uri: string;
    certified: boolean;
    certifiedAt: number | null;
    /** `code`: a "no"'s failure code, null for a yes or an uncoded no (absent in provenance written before codes). */
    attestations: {
      account: string;
      evalLoss: number;
      verdict: boolean;
      code?: string | null;
      block: number;
    }[];
  };
  /** This checkpoint's round first, then each parent's, back to a pre-training round 0. */
  lineage: ProvenanceRound[];
}

/** A round's kind in lower case, as `dao propose-round --kind` spells it. */
export type RoundKind = 'pretrain' | 'finetune';

function kindOf(p: RoundProposal): RoundKind {
  return p.round.kind === 'Pretrain' ? 'pretrain' : 'finetune';
}

/** One line of `fedtune checkpoint list`: a committed checkpoint, its round, its parent and where attestation stands. */
export interface CheckpointSummary {
  id: string;
  proposal: number;
  round: number;
  kind: RoundKind;
  parent: string | null;
  trainLoss: number;
  evalLoss: number;
  contributors: number;
  attestations: { positive: number; total: number };
  /** The "no" attests, oldest first, with their failure codes (null: a no without a code). */
  refusals: { account: string; code: string | null; block: number }[];
  certified: boolean;
  block: number;
  bytes: number;
  uri: string;
}

/** Every checkpoint committed in the network (only the certified ones with `certified: true`), oldest first. */
export function listCheckpoints(
  net: ProvenanceNetwork,
  { certified = false }: { certified?: boolean } = {},
): CheckpointSummary[] {
  return Object.values(net.checkpoints)
    .filter((c) => !certified || c.certified)
    .sort((a, b) => a.block - b.block || a.proposal - b.proposal || a.round - b.round)
    .map((c) => {
      const p = net.proposals[c.proposal] as RoundProposal;
      const f = p.finalized[c.round]!;
      const attests = Object.values(c.attests);
      return {
        id: c.id,
        proposal: c.proposal,
        round: c.round,
        kind: kindOf(p),
        parent: parentOf(net, c.id),
        trainLoss: f.metrics.trainLoss,
        evalLoss: f.metrics.evalLoss,
        contributors: f.contributors.length,
        attestations: { positive: attests.filter((a) => a.verdict).length, total: attests.length },
        refusals: Object.entries(c.attests)
          .filter(([, a]) => !a.verdict)
          .map(([account, a]) => ({ account, code: a.code ?? null, block: a.block }))
          .sort((x, y) => x.block - y.block),
        certified: c.certified,
        block: c.block,
        bytes: c.bytes,
        uri: c.uri,
      };
    });
}

/** The checkpoint a committed round started from: the previous round's, else the proposal's base (null for pre-training). */
export function parentOf(net: ProvenanceNetwork, id: string): string | null {
  const c = net.checkpoints[id as Hex32];
  if (!c)
    throw new CheckpointError(
      'E_UNKNOWN_CHECKPOINT',
      `checkpoint ${id} is not committed in network ${net.name}`,
    );
  const p = net.proposals[c.proposal] as RoundProposal;
  if (c.round > 0) return p.finalized[c.round - 1]!.checkpoint.id;
  return p.round.kind === 'Finetune' ? p.round.baseCheckpoint : null;
}

/**
 * Builds the provenance of checkpoint `id`. `blockHash(n)` resolves a block number to its hash (the chain client's
 * getBlockHash), so that every claim can be checked against a block.
 */
export async function buildProvenance(
  net: ProvenanceNetwork,
  id: string,
  genesisHash: string,
  blockHash: (n: number) => Promise<string>,
): Promise<Provenance> {
  const c = net.checkpoints[id as Hex32];
  if (!c)
    throw new CheckpointError(
      'E_UNKNOWN_CHECKPOINT',
      `checkpoint ${id} is not committed in network ${net.name}`,
    );
  const lineage: ProvenanceRound[] = [];
  const seen = new Set<string>();
  for (let at: string | null = id; at !== null; at = parentOf(net, at)) {
    if (seen.has(at)) throw new CheckpointError('E_PROVENANCE_CYCLE', `checkpoint ${at} is its own ancestor`);
    seen.add(at);
    const record = net.checkpoints[at as Hex32];
    if (!record)
      throw new CheckpointError('E_UNKNOWN_CHECKPOINT', `parent ${at} is not committed in ${net.name}`);
    const p = net.proposals[record.proposal] as RoundProposal;
    const f = p.finalized[record.round]!;
    const d = net.datasets[p.round.dataset];
    lineage.push({
      checkpoint: at,
      proposal: p.id,
      kind: kindOf(p),
      round: record.round,
      parent: parentOf(net, at),
      block: f.block,
      blockHash: await blockHash(f.block),
      coordinator: f.coordinator,
      dataset: {
        name: d?.name ?? '(unregistered)',
        root: p.round.dataset,
        records: d?.records ?? 0,
        shards: d?.shards ?? 0,
        license: d?.license ?? '',
        source: d?.source ?? '',
        manifestUri: d?.manifestUri ?? '',
      },
      contributors: f.contributors,
      rewards: f.rewards,
      updatesRoot: f.updatesRoot,
      datasetShardsRoot: f.datasetShardsRoot,
      metrics: {
        trainLoss: f.metrics.trainLoss,
        evalLoss: f.metrics.evalLoss,
        ...Object.fromEntries(f.metrics.extra.map((m) => [m.name, m.value])),
      },
      hyperParams: p.round.hyperParams,
    });
  }
  return {
    version: 1,
    genesisHash,
    network: { id: net.id, name: net.name, members: net.members },
    checkpoint: {
      id,
      bytes: c.bytes,
      uri: c.uri,
      certified: c.certified,
      certifiedAt: c.certifiedAt,
      attestations: Object.entries(c.attests).map(([account, a]) => ({ account, ...a })),
    },
    lineage,
  };
}
