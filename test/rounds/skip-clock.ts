// A clock for tests of a live round: real time, which a test can move forward at once when the outcome of a wait is
// already decided (a deadline that only an absent worker could still meet), so the test does not sit it out.
import type { Clock } from '../../coordinator/index.ts';

interface Timer {
  at: number;
  fn: () => void;
  handle: NodeJS.Timeout;
}

export class SkipClock implements Clock {
  private offset = 0;
  private readonly timers = new Set<Timer>();

  now(): number {
    return Date.now() + this.offset;
  }

  after(ms: number, fn: () => void): () => void {
    const timer = { at: this.now() + Math.max(0, ms), fn } as Timer;
    this.schedule(timer);
    return () => {
      clearTimeout(timer.handle);
      this.timers.delete(timer);
    };
  }

  /** Moves time `ms` forward: every timer that falls due runs now, in the order of its due time. */
  skip(ms: number): void {
    this.offset += Math.max(0, ms);
    for (const timer of [...this.timers].sort((a, b) => a.at - b.at)) {
      clearTimeout(timer.handle);
      this.schedule(timer);
    }
  }

  private schedule(timer: Timer): void {
    this.timers.add(timer);
    timer.handle = setTimeout(
      () => {
        this.timers.delete(timer);
        timer.fn();
      },
      Math.max(0, timer.at - this.now()),
    );
  }
}
