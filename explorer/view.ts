// What the page is sent: the reduced chain state of one network, cut to what the pages show, and the API's types.
import { listCheckpoints, type CheckpointSummary } from '../checkpoints/index.ts';
import type { AuditEntry, Hex32, NetworkState, ProtocolState } from '../pallet-bindings/index.ts';

export interface ChainStatus {
  url: string;
  genesisHash: string;
  /** Whether the node answers now; the page says so when it does not. */
  connected: boolean;
  /** Why the explorer's view may be stale (the node went away, following failed), or null. */
  error: string | null;
  height: number;
  blockHash: string | null;
}

export interface SourceView {
  /** Position in the checkpoint's source list: the proxy route /api/source/<index>/… names it. */
  index: number;
  name: string;
  /** A direct link to the whole file, when the source is a fedtune server (templated sources have none). */
  fileUrl: string | null;
}

export interface ExplorerView {
  chain: ChainStatus;
  networks: { id: Hex32; name: string; createdAt: number }[];
  /** The network the page shows, or null with `error` saying why. */
  network: NetworkState | null;
  error: { code: string; message: string } | null;
  /** The block each vote was cast in, by proposal id and account (votes before --from are not dated). */
  votedAt: Record<number, Record<string, number>>;
  /** Calls addressed to this network that broke a rule. */
  audit: AuditEntry[];
  checkpoints: CheckpointSummary[];
  sources: Record<string, SourceView[]>;
  coordinator: { url: string } | null;
}

export interface CoordinatorSample {
  /** Milliseconds since the epoch when the sample was taken. */
  t: number;
  connectedWorkers: number | null;
  /** Each series of /metrics summed over its labels, plus `name{label="v"}` for labelled ones. */
  metrics: Record<string, number>;
}

export interface CoordinatorView {
  url: string;
  /** Why the last poll failed, or null. */
  error: string | null;
  samples: CoordinatorSample[];
}

/** The network a request asks for, else the one given at start, else the only one on chain. */
export function pickNetwork(
  state: ProtocolState,
  asked: string | null,
  fallback: Hex32 | null,
): { id: Hex32 | null; error: ExplorerView['error'] } {
  const ids = Object.keys(state.networks) as Hex32[];
  const listed = ids.map((id) => `${id} (${state.networks[id]!.name})`).join(', ');
  const want = (asked ?? fallback)?.toLowerCase() ?? null;
  if (want !== null) {
    if (state.networks[want as Hex32] !== undefined) return { id: want as Hex32, error: null };
    return {
      id: null,
      error: {
        code: 'E_UNKNOWN_NETWORK',
        message: `no network ${want} on this chain at block ${state.height}. ${
          ids.length > 0
            ? `Networks here: ${listed}.`
            : 'No fedtune network exists here yet: create one with `fedtune network create`, or point --chain at the node that has it.'
        }`,
      },
    };
  }
  if (ids.length === 1) return { id: ids[0]!, error: null };
  if (ids.length === 0) {
    return {
      id: null,
      error: {
        code: 'E_NO_NETWORK',
        message: `no fedtune network on this chain at block ${state.height}: create one with \`fedtune network create\`, or point --chain at the node that has it. The page updates when one appears.`,
      },
    };
  }
  return {
    id: null,
    error: {
      code: 'E_CHOOSE_NETWORK',
      message: `${ids.length} networks on this chain: pick one below, or start the explorer with --network ID.`,
    },
  };
}

export function buildView(params: {
  state: ProtocolState;
  chain: ChainStatus;
  network: Hex32 | null;
  error: ExplorerView['error'];
  sourcesOf: (net: NetworkState, checkpoint: string) => SourceView[];
  votedAt: (network: string) => Record<number, Record<string, number>>;
  coordinator: string | null;
}): ExplorerView {
  const { state, network } = params;
  const net = network === null ? null : (state.networks[network] ?? null);
  const networks = Object.values(state.networks).map((n) => ({
    id: n.id,
    name: n.name,
    createdAt: n.createdAt,
  }));
  if (net === null) {
    return {
      chain: params.chain,
      networks,
      network: null,
      error: params.error,
      votedAt: {},
      audit: [],
      checkpoints: [],
      sources: {},
      coordinator: params.coordinator === null ? null : { url: params.coordinator },
    };
  }
  return {
    chain: params.chain,
    networks,
    network: net,
    error: null,
    votedAt: params.votedAt(net.id),
    audit: state.audit.filter((a) => a.network === net.id),
    checkpoints: listCheckpoints(net),
    sources: Object.fromEntries(Object.keys(net.checkpoints).map((id) => [id, params.sourcesOf(net, id)])),
    coordinator: params.coordinator === null ? null : { url: params.coordinator },
  };
}
