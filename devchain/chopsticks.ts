// The one place chopsticks is loaded. Always through import(), so that a caller loaded as CommonJS (mocha requires
// TypeScript test files through tsx) still gets the ES module build: a second copy of chopsticks-core in the process
// would have its own logger, its own runtime worker thread and its own classes.
export type ChopsticksCore = typeof import('@acala-network/chopsticks-core');

export async function loadChopsticks(): Promise<{ core: ChopsticksCore }> {
  return { core: await import('@acala-network/chopsticks-core') };
}
