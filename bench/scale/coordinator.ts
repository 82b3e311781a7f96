// bench scale's coordinator, in a process of its own so that its peak RSS is its own: the real engine on the bench's
// dev chain, reporting each event as a JSON line with the wall-clock time it happened. Stops on SIGTERM. With
// PARENT_URL and COHORT, a sub-coordinator of the coordinator at PARENT_URL (docs/rounds.md, "Hierarchical rounds").
// node --import tsx bench/scale/coordinator.ts CHAIN_URL NETWORK DATA_DIR [SEED [PARENT_URL COHORT]]
import { pino } from 'pino';
import { startCoordinator } from '../../coordinator/index.ts';
import { initBackend } from '../../model/index.ts';
import { connect, signerFromSeed, type Hex32 } from '../../pallet-bindings/index.ts';

const [chainUrl, network, dataDir, seed = '//Ferdie', parentUrl, cohort] = process.argv.slice(2) as [
  string,
  Hex32,
  string,
  string?,
  string?,
  string?,
];
// Warnings and errors go to stderr, which the bench shows when something goes wrong.
const logger = pino({ level: 'warn' }, pino.destination(2));
/** Each line carries the process's CPU time so far (ms, user + system, its threads included). */
const line = (value: object) => {
  const { user, system } = process.cpuUsage();
  process.stdout.write(`${JSON.stringify({ at: Date.now(), cpuMs: (user + system) / 1000, ...value })}\n`);
};

await initBackend({ backend: 'auto' });
const chain = await connect({ url: chainUrl, logger });
const engine = await startCoordinator({
  chain,
  signer: await signerFromSeed(seed),
  network,
  dataDir,
  logger,
  evalExamples: 32,
  parent: parentUrl ? { url: parentUrl, cohort: Number(cohort) } : undefined,
  // Every simulated worker dials from 127.0.0.1: the per-address limit on sockets still authenticating is lifted.
  limits: { maxConnections: 4096, maxUnauthenticated: 4096, maxUnauthenticatedPerAddress: 4096 },
  onEvent: (event) => {
    // One line per update would cost more than what is measured: accepted updates are counted, the last one timed.
    if (event.type === 'taskSent') return;
    line(event.type === 'updateAccepted' ? { type: event.type, bytes: event.bytes } : event);
  },
});
line({ type: 'listening', url: engine.url });

process.on('SIGTERM', () => {
  void (async () => {
    await engine.close();
    await chain.close();
    process.exit(0);
  })();
});
