// The coordinator's view of the chain: the reducer's state, folded forward as finalized heads arrive, and waits for a
// height that wake on the next head instead of polling.
import type { Logger } from 'pino';
import {
  initialState,
  syncState,
  type ChainClient,
  type Hex32,
  type NetworkState,
  type ProtocolState,
} from '../pallet-bindings/index.ts';
import { Signal, type Clock } from './clock.ts';
import { CoordinatorError } from './errors.ts';

export class ChainView {
  state: ProtocolState;
  private syncing: Promise<void> = Promise.resolve();
  private readonly head: Signal;
  private unsubscribe: (() => void) | null = null;
  private stopped = false;

  constructor(
    private readonly chain: ChainClient,
    private readonly network: Hex32,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly from?: number,
  ) {
    this.state = initialState({ only: network });
    this.head = new Signal(clock);
  }

  net(): NetworkState | undefined {
    return this.state.networks[this.network];
  }

  /** Folds the finalized blocks not yet seen; a failed read is logged and retried at the next head. */
  refresh(): Promise<void> {
    this.syncing = this.syncing.then(async () => {
      if (this.stopped) return;
      try {
        this.state = await syncState(this.chain, { state: this.state, from: this.from });
      } catch (error) {
        this.logger.warn(
          { code: (error as { code?: string }).code },
          `reading the chain failed (${(error as Error).message}); retrying at the next block`,
        );
      }
    });
    return this.syncing;
  }

  /** Calls `onHead` after each new finalized head has been folded in. */
  async follow(onHead: () => void): Promise<void> {
    const unsub = await this.chain.api.rpc.chain.subscribeFinalizedHeads(() => {
      void this.refresh().then(() => {
        this.head.wake();
        onHead();
      });
    });
    this.unsubscribe = unsub;
  }

  /** The state once it has reached block `height` (0: just refreshed). */
  async syncTo(height: number, timeoutMs = 120_000): Promise<ProtocolState> {
    const until = this.clock.now() + timeoutMs;
    await this.refresh();
    while (this.state.height < height) {
      if (this.stopped) throw new CoordinatorError('E_STOPPED', 'the coordinator is stopping');
      if (this.clock.now() >= until)
        throw new CoordinatorError(
          'E_CHAIN_STALLED',
          `the chain did not reach block ${height} in ${timeoutMs / 1000} s`,
        );
      await this.head.wait(Math.min(until, this.clock.now() + 5_000));
      await this.refresh();
    }
    return this.state;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    this.head.wake();
    await this.syncing.catch(() => undefined);
  }
}
