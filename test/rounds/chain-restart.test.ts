// A chain that goes away: the dev chain is stopped while a round takes updates and started again on the same data
// and port; the coordinator reconnects, and the round commits every acknowledged update once. The coordinator reaches
// the chain through a TCP relay that drops its sockets with the chain, as a real node's going away would (a stopped
// devnet leaves already-upgraded WebSocket connections open).
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { EventEmitter } from 'node:events';
import { expect } from 'chai';
import { startDevnet, type Devnet } from '../../devchain/index.ts';
import { startCoordinator, type Coordinator, type CoordinatorEvent } from '../../coordinator/index.ts';
import { runWorker, type RunningWorker } from '../../worker/index.ts';
import {
  connect,
  initialState,
  syncState,
  type ChainClient,
  type RoundProposal,
} from '../../pallet-bindings/index.ts';
import { approveProposal, logger, setUp, waitFor, type Fixture } from './helpers.ts';

/** Forwards a local port to the devnet; cut() drops every connection and stops listening until listen() again. */
function relay(target: number) {
  const sockets = new Set<Socket>();
  let server: Server | null = null;
  let port = 0;
  const listen = () =>
    new Promise<number>((resolve) => {
      server = createServer((client) => {
        const upstream = tcpConnect(target, '127.0.0.1');
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on('close', () => sockets.delete(s));
          s.on('error', () => s.destroy());
        }
        client.pipe(upstream).pipe(client);
      }).listen(port, '127.0.0.1', () => {
        port = (server!.address() as { port: number }).port;
        resolve(port);
      });
    });
  const cut = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server!.close(() => resolve());
    });
  return { listen, cut };
}

describe('rounds: the dev chain stops and comes back under a running round', function () {
  this.timeout(300_000);
  let f: Fixture;
  let coordinator: Coordinator | null = null;
  let restarted: Devnet | null = null;
  let chain: ChainClient | null = null;
  let link: ReturnType<typeof relay> | null = null;
  const workers: RunningWorker[] = [];
  const events = new EventEmitter();
  const on = (fn: (e: CoordinatorEvent) => void) => events.on('c', fn);

  before(async () => {
    f = await setUp('chain-restart');
  });
  after(async () => {
    await Promise.all(workers.map((w) => w.close()));
    await coordinator?.close();
    await chain?.close();
    await link?.cut().catch(() => undefined);
    await restarted?.close();
    await f?.close();
  });

  it('commits the round once the chain is back, with both updates', async () => {
    const devnetPort = Number(new URL(f.devnet.url).port);
    link = relay(devnetPort);
    chain = await connect({ url: `ws://127.0.0.1:${await link.listen()}`, logger });
    coordinator = await startCoordinator({
      chain,
      signer: f.coordinator,
      network: f.network,
      dataDir: join(f.dir, 'coordinator'),
      port: 0,
      logger,
      evalExamples: 16,
      onEvent: (e) => events.emit('c', e),
    });
    for (const i of [0, 1]) {
      workers.push(
        runWorker({
          url: coordinator.url,
          signer: f.workers[i]!,
          cacheDir: join(f.dir, `worker-${i}`),
          logger,
          reconnect: { minMs: 100, maxMs: 500 },
        }),
      );
    }
    await Promise.all(workers.map((w) => w.ready));
    const firstUpdate = waitFor(on, (e) => e.type === 'updateAccepted');
    const committed = waitFor(on, (e) => e.type === 'finalizeRound', 240_000);
    const id = await approveProposal(f, { minWorkers: 2, maxWorkers: 2, roundDeadline: 120 });
    await firstUpdate;

    await link.cut();
    await f.devnet.close();
    await new Promise((r) => setTimeout(r, 1500));
    restarted = await startDevnet({
      port: devnetPort,
      logger,
      blockMode: 'instant',
      dataDir: f.devnet.dataDir!,
    });
    expect(restarted.resumed).to.equal(true);
    await link.listen();

    const done = (await committed) as Extract<CoordinatorEvent, { type: 'finalizeRound' }>;
    expect(done.proposal).to.equal(id);
    // Read through the relayed client: the fixture's own client still holds a socket to the stopped devnet.
    const state = await syncState(chain, { state: initialState({ only: f.network }) });
    const p = state.networks[f.network]!.proposals[id] as RoundProposal;
    expect(p.status).to.equal('completed');
    expect(p.finalized[0]!.contributors.map((c) => c.account).sort()).to.deep.equal(
      [f.workers[0]!.address, f.workers[1]!.address].sort(),
    );
    expect(p.finalized[0]!.checkpoint.id).to.equal(done.checkpointId);
  });
});
