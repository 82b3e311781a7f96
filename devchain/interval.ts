// Time that moves on its own: an empty block whenever no block has been built for a while, as a live chain builds one
// every slot whether or not anyone transacts, so that voting periods and deadlines counted in blocks pass by themselves.
import type { Blockchain } from '@acala-network/chopsticks-core';
import type { Logger } from 'pino';

export interface BlockTicker {
  /** Stops the timer and waits for a block it started, if any. */
  dispose(): Promise<void>;
}

/**
 * Builds a block `intervalMs` after the last one, whatever built it: a transaction in instant or batch mode, a
 * dev_newBlock, or this timer. Blocks go through chopsticks' own queue, so one built here never races another.
 */
export function startBlockTicker(chain: Blockchain, intervalMs: number, logger: Logger): BlockTicker {
  let timer: NodeJS.Timeout | null = null;
  let disposed = false;
  let building: Promise<unknown> = Promise.resolve();
  const arm = () => {
    if (disposed) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      building = chain.newBlock().then(
        (block) => logger.debug({ number: block.number }, 'built a block on the interval'),
        (error: unknown) => {
          logger.warn({ err: error }, 'building a block on the interval failed; trying again next interval');
          arm();
        },
      );
    }, intervalMs);
    // A ticking dev chain alone does not keep a process alive: the RPC server does that while it listens.
    timer.unref();
  };
  const subscription = chain.headState.subscribeHead(() => arm());
  arm();
  return {
    async dispose() {
      disposed = true;
      chain.headState.unsubscribeHead(subscription);
      if (timer) clearTimeout(timer);
      await building.catch(() => undefined);
    },
  };
}
