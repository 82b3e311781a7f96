// The one place chopsticks is loaded. Always through import(), so that a caller loaded as CommonJS (mocha requires
// TypeScript test files through tsx) still gets the ES module build: a second copy of chopsticks-core in the process
// would have its own logger, its own runtime worker thread and its own classes.
export type ChopsticksCore = typeof import('@acala-network/chopsticks-core');

export interface Chopsticks {
  core: ChopsticksCore;
  createServer: (typeof import('@acala-network/chopsticks/server'))['createServer'];
  handler: (typeof import('@acala-network/chopsticks/rpc/index'))['handler'];
}

export async function loadChopsticks(): Promise<Chopsticks> {
  const [core, server, rpc] = await Promise.all([
    import('@acala-network/chopsticks-core'),
    import('@acala-network/chopsticks/server'),
    import('@acala-network/chopsticks/rpc/index'),
  ]);
  return { core, createServer: server.createServer, handler: rpc.handler };
}
