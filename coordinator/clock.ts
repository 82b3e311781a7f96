// Time as the engine sees it: injected, so tests can move deadlines and back-offs forward instead of waiting them out.
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Calls `fn` once `ms` have passed; returns a function that cancels it. */
  after(ms: number, fn: () => void): () => void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  after(ms, fn) {
    const timer = setTimeout(fn, Math.max(0, ms));
    return () => clearTimeout(timer);
  },
};

/** Resolves after `ms`, or at once when `signal` aborts (a stopping coordinator does not sit out its back-off). */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      cancel();
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const cancel = clock.after(ms, done);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * A wake-up that any event can trigger: `wait(until)` resolves at the deadline, or earlier when `wake()` is called.
 * Wakes that come while nobody waits are kept, so an event between two waits is never lost.
 */
export class Signal {
  private pending = false;
  private resolve: (() => void) | null = null;
  constructor(private readonly clock: Clock) {}

  wake(): void {
    if (this.resolve) this.resolve();
    else this.pending = true;
  }

  wait(untilMs: number): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const cancel = this.clock.after(untilMs - this.clock.now(), () => done());
      const done = () => {
        cancel();
        this.resolve = null;
        resolve();
      };
      this.resolve = done;
    });
  }
}
