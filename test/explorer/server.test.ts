// The explorer's server without a chain or a browser: its API over a state folded by the real reducer, the
// coordinator figures parser, the committed bundle being what the sources build, and the command's errors.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { pino } from 'pino';
import { Metrics } from '../../coordinator/index.ts';
import { watchCoordinator } from '../../explorer/coordinator.ts';
import { parsePrometheus } from '../../explorer/index.ts';
import type { Follower, FollowerEvent } from '../../explorer/follower.ts';
import { startExplorerServer, type ExplorerServer } from '../../explorer/server.ts';
import type { ExplorerView } from '../../explorer/view.ts';
import { initialState, reduceBlocks, type ProtocolState } from '../../pallet-bindings/index.ts';
import { ALICE, callsBlock, createCall, datasetCall, hex32, networkAt } from '../pallet-bindings/fixtures.ts';
import { fedtune, inProcess } from '../run-cli.ts';
import { closedPort } from './fixture.ts';

const logger = pino({ level: 'silent' });
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A follower double over a fixed state, that can announce a new head. */
function followerOf(state: ProtocolState): Follower & { announce(): void } {
  const listeners = new Set<(e: FollowerEvent) => void>();
  return {
    state: () => state,
    votedAt: () => ({}),
    status: () => ({
      url: 'ws://chain.test',
      genesisHash: '0x00',
      connected: true,
      error: null,
      height: state.height,
      blockHash: state.blockHash,
    }),
    on(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    announce() {
      for (const l of listeners) l({ type: 'head', height: state.height, blockHash: state.blockHash });
    },
    close: async () => undefined,
  };
}

describe('explorer server', () => {
  const net1 = networkAt(1);
  const net2 = networkAt(2);
  const state = reduceBlocks(initialState(), [
    callsBlock(1, [[ALICE, null, createCall()]]),
    callsBlock(2, [[ALICE, null, { ...createCall(), name: 'second' } as never]]),
    callsBlock(3, [[ALICE, net1, datasetCall(hex32(5))]]),
  ]);
  let server: ExplorerServer;
  let follower: ReturnType<typeof followerOf>;
  const get = async (path: string) => {
    const res = await fetch(new URL(path, server.url));
    return { status: res.status, type: res.headers.get('content-type'), body: await res.text(), res };
  };

  before(async () => {
    follower = followerOf(state);
    server = await startExplorerServer({
      follower,
      coordinator: null,
      network: null,
      sources: [],
      host: '127.0.0.1',
      port: 0,
      logger,
    });
  });
  after(() => server.close());

  it('serves the bundled page with a policy that keeps it on its own origin', async () => {
    const page = await get('/');
    expect(page.status).to.equal(200);
    expect(page.body).to.include('assets/app.js');
    expect(page.res.headers.get('content-security-policy')).to.include("default-src 'self'");
    const js = await get('/assets/app.js');
    expect(js.type).to.match(/^text\/javascript/);
    expect(js.body).to.include('uPlot');
  });

  it('asks to pick a network when there are several, and names them for an unknown id', async () => {
    const none = JSON.parse((await get('/api/state')).body) as ExplorerView;
    expect(none.network).to.equal(null);
    expect(none.error?.code).to.equal('E_CHOOSE_NETWORK');
    expect(none.networks.map((n) => n.name).sort()).to.deep.equal(['second', 'test-net']);

    const unknown = JSON.parse((await get(`/api/state?network=${hex32(9)}`)).body) as ExplorerView;
    expect(unknown.error?.code).to.equal('E_UNKNOWN_NETWORK');
    expect(unknown.error?.message).to.include(`${net1} (test-net)`).and.to.include(`${net2} (second)`);

    const one = JSON.parse((await get(`/api/state?network=${net1}`)).body) as ExplorerView;
    expect(one.error).to.equal(null);
    expect(one.network?.name).to.equal('test-net');
    expect(Object.keys(one.network!.datasets)).to.deep.equal([hex32(5)]);
    expect(one.chain.height).to.equal(3);
  });

  it('answers bad requests with a code: unknown checkpoint, unknown route, writes, no coordinator', async () => {
    const relay = await get(`/api/source/0/checkpoints/${hex32(7)}/chunks/0`);
    expect(relay.status).to.equal(404);
    expect(JSON.parse(relay.body).error.code).to.equal('E_UNKNOWN_CHECKPOINT');
    expect(JSON.parse((await get('/api/source/0/checkpoints/0x12/manifest')).body).error.code).to.equal(
      'E_NOT_FOUND',
    );
    expect(JSON.parse((await get('/api/coordinator')).body).error.code).to.equal('E_NO_COORDINATOR');
    const post = await fetch(new URL('/api/state', server.url), { method: 'POST' });
    expect(post.status).to.equal(405);
  });

  it('pushes a new head to an open event stream', async () => {
    const res = await fetch(new URL('/api/events', server.url));
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let seen = '';
    const until = async (pattern: RegExp) => {
      while (!pattern.test(seen)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before ${pattern}`);
        seen += decoder.decode(value);
      }
    };
    await until(/event: chain\n/);
    follower.announce();
    await until(/event: head\ndata: \{"height":3,/);
    await reader.cancel();
  });

  it("reads a coordinator's Prometheus figures, summed over labels and per labelled series", () => {
    const m = new Metrics();
    m.inc('fedtune_updates_total', 'Updates', { outcome: 'accepted', code: '' }, 4);
    m.inc('fedtune_updates_total', 'Updates', { outcome: 'rejected', code: 'E_NORM' }, 1);
    m.set('fedtune_connected_workers', 'Workers', 3);
    const figures = parsePrometheus(`${m.render()}garbage line\n`);
    expect(figures.fedtune_updates_total).to.equal(5);
    expect(figures['fedtune_updates_total{code="E_NORM",outcome="rejected"}']).to.equal(1);
    expect(figures.fedtune_connected_workers).to.equal(3);
    expect(Object.keys(figures)).to.have.length(4);
  });

  it('says which coordinator does not answer and how to point at one', async () => {
    const port = await closedPort();
    const watch = watchCoordinator({ url: `http://127.0.0.1:${port}/`, intervalMs: 200, logger });
    try {
      await new Promise<void>((resolve) => watch.onSample(resolve));
      const view = watch.view();
      expect(view.samples).to.deep.equal([]);
      expect(view.error).to.include(
        `the coordinator at http://127.0.0.1:${port} does not answer (ECONNREFUSED)`,
      );
      expect(view.error).to.include('--coordinator takes its HTTP base URL');
    } finally {
      watch.close();
    }
  });

  it('has a committed bundle that is what the page sources build', function () {
    this.timeout(60_000);
    const check = spawnSync(process.execPath, ['scripts/build-explorer.mjs', '--check'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(check.stderr).to.equal('');
    expect(check.status).to.equal(0);
  });

  it('fedtune explorer: a bad --listen is a usage error; an unreachable chain says how to start one', async function () {
    this.timeout(120_000);
    const bad = await inProcess(['explorer', '--listen', 'nowhere']);
    expect(bad.status).to.equal(2);
    expect(bad.stderr).to.match(/E_USAGE.*--listen takes HOST:PORT/);
    const down = await fedtune(['explorer', '--chain', 'ws://127.0.0.1:9', '--listen', '127.0.0.1:0']);
    expect(down.status).to.equal(1);
    expect(down.stderr).to.match(/E_CHAIN_UNREACHABLE.*fedtune devnet/);
  });
});
