// The proposals this coordinator runs: each one's context prepared once (its manifest fetched and checked against the
// on-chain root), a proposal that cannot run failed on chain after bounded tries, and openRound for approved ones.
import { fetchManifest, type DatasetManifest } from '../datasets/index.ts';
import {
  submitChecked,
  type Hex32,
  type NetworkState,
  type RoundProposal,
} from '../pallet-bindings/index.ts';
import { sleep } from './clock.ts';
import { failProposal, type ChainDependencies } from './commit.ts';
import { CoordinatorError, codeOf } from './errors.ts';
import type { CoordinatorEvent } from './events.ts';
import { PROPOSAL_FAULTS, prepareProposal, type ProposalContext } from './prepare.ts';

export class Proposals {
  readonly contexts = new Map<number, ProposalContext>();
  /** Manifests of the datasets in use, served to workers at /datasets/ROOT/manifest. */
  readonly manifests = new Map<string, DatasetManifest>();
  private readonly failures = new Map<number, number>();

  constructor(
    private readonly deps: ChainDependencies & {
      net(): NetworkState | undefined;
      data?: Record<string, string>;
      /** Folders a local manifest URI must lie under (none: any local file). */
      manifestRoots?: readonly string[];
      maxPrepareAttempts: number;
      emit(event: CoordinatorEvent): void;
    },
  ) {}

  private async manifestFor(root: Hex32): Promise<DatasetManifest> {
    const cached = this.manifests.get(root);
    if (cached) return cached;
    const record = this.deps.net()?.datasets[root];
    if (!record) throw new CoordinatorError('E_UNKNOWN_DATASET', `dataset ${root} is not registered`);
    const manifest = await fetchManifest(record.manifestUri, root, { localRoots: this.deps.manifestRoots });
    this.manifests.set(root, manifest);
    return manifest;
  }

  /**
   * The proposal's context, prepared once. A fault of the proposal's own, or a failure that lasts `maxPrepareAttempts`
   * tries (a manifest nobody serves, data this coordinator lacks), fails it on chain (null); earlier tries throw.
   */
  async prepared(p: RoundProposal): Promise<ProposalContext | null> {
    const cached = this.contexts.get(p.id);
    if (cached) {
      cached.proposal = p;
      return cached;
    }
    const { deps } = this;
    try {
      const ctx = await prepareProposal(p, {
        manifestFor: (root) => this.manifestFor(root),
        data: deps.data,
      });
      this.contexts.set(p.id, ctx);
      return ctx;
    } catch (error) {
      const tries = (this.failures.get(p.id) ?? 0) + 1;
      this.failures.set(p.id, tries);
      if (!PROPOSAL_FAULTS.has(codeOf(error)) && tries < deps.maxPrepareAttempts) {
        deps.logger.warn(
          { proposal: p.id, code: codeOf(error), attempt: tries, of: deps.maxPrepareAttempts },
          `cannot prepare the proposal yet: ${(error as Error).message}`,
        );
        throw new CoordinatorError(codeOf(error), (error as Error).message);
      }
      if (await failProposal(p.id, error as Error, deps))
        deps.emit({ type: 'failRound', proposal: p.id, reason: (error as Error).message });
      return null;
    }
  }

  /** Prepares an approved proposal and opens it on chain, naming the endpoint workers connect to. */
  async open(p: RoundProposal, endpoint: string): Promise<void> {
    if (!(await this.prepared(p))) return;
    const { deps } = this;
    try {
      const { inclusion } = await submitChecked(deps.chain, {
        signer: deps.signer,
        network: deps.network,
        calls: [{ type: 'openRound', proposal: p.id, coordinatorEndpoint: endpoint }],
        state: deps.state(),
        sync: (to) => deps.syncTo(to),
      });
      deps.emit({ type: 'openRound', proposal: p.id, blockNumber: inclusion.blockNumber });
    } catch (error) {
      deps.logger.warn(
        { proposal: p.id, code: codeOf(error) },
        `opening the proposal failed: ${(error as Error).message}`,
      );
      await sleep(deps.clock, 1000, deps.signal);
    }
  }
}
