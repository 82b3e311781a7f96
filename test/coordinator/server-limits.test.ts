// The coordinator server under a hostile peer, before and after login: field lengths bounded before parsing, message
// sizes with coded errors, unauthenticated sockets limited in total and per address (plain HTTP included), time to
// authenticate, signatures of the wrong length, updates replayed from another network, and a relayed challenge.
import { createHash } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { expect } from 'chai';
import WebSocket, { WebSocketServer } from 'ws';
import { pino } from 'pino';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import type { KeyringPair } from '@polkadot/keyring/types';
import {
  startCoordinatorServer,
  type CoordinatorServer,
  type CoordinatorServerOptions,
} from '../../coordinator/server.ts';
import { connectWorker, type WorkerConnection } from '../../worker/index.ts';
import { MAX_MESSAGE_CHARS, PROTOCOL_VERSION, updateMessage, type Frame } from '../../proto/index.ts';
import { BASE, NETWORK, RawClient, expectError, signedBegin } from './raw-client.ts';

const logger = pino({ level: process.env.TEST_LOG ?? 'silent' });

describe('coordinator: limits against a hostile peer', () => {
  let alice: KeyringPair, bob: KeyringPair;
  let server: CoordinatorServer;
  const closers: (() => unknown)[] = [];

  before(async () => {
    await cryptoWaitReady();
    const keyring = new Keyring({ type: 'sr25519' });
    [alice, bob] = ['//Alice', '//Bob'].map((uri) => keyring.addFromUri(uri));
  });

  const start = async (overrides: Partial<CoordinatorServerOptions> = {}) => {
    server = await startCoordinatorServer({
      coordinator: alice.address,
      network: NETWORK,
      logger,
      limits: { maxFrameBytes: 256 * 1024 },
      hooks: {
        admit: async () => ({ ok: true }),
        expectedUpload: (_account, taskId) =>
          taskId.startsWith('task-') ? { proposal: 0, round: 1, base: BASE, codec: 'dense' } : null,
        acceptUpdate: async (update) => ({
          ok: true,
          updateHash: new Uint8Array(createHash('sha256').update(update.payload).digest()),
        }),
      },
      ...overrides,
    });
    return server;
  };

  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
    await server?.close();
  });

  const tcp = async (port: number): Promise<Socket> => {
    const socket = connect(port, '127.0.0.1');
    await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    closers.push(() => socket.destroy());
    return socket;
  };
  const portOf = (s: CoordinatorServer) => Number(new URL(s.httpUrl).port);

  it('refuses a 60,000-character account at decoding (E_FIELD_TOO_LONG), before any SS58 parsing, and keeps serving', async () => {
    await start();
    const raw = await RawClient.open(server.url);
    raw.send({
      kind: 'hello',
      hello: { protocolVersion: PROTOCOL_VERSION, account: '5'.repeat(60_000), client: 'x' },
    } as Frame);
    expectError(await raw.next(), 'E_FIELD_TOO_LONG');
    await raw.untilClosed();
    // Just over the longest account form: refused by the length rule, not by the decoder.
    const long = await RawClient.open(server.url);
    long.send({
      kind: 'hello',
      hello: { protocolVersion: PROTOCOL_VERSION, account: '5'.repeat(67), client: 'x' },
    } as Frame);
    expectError(await long.next(), 'E_FIELD_TOO_LONG');
    const health = (await (await fetch(`${server.httpUrl}/health`)).json()) as { status: string };
    expect(health.status).to.equal('ok');
    const honest = await RawClient.open(server.url);
    expect((await honest.authenticate(bob)).kind).to.equal('welcome');
    honest.ws.terminate();
  });

  it('answers a message over the pre-authentication limit with E_FRAME_TOO_LARGE and closes', async () => {
    await start();
    const raw = await RawClient.open(server.url);
    // 100 KiB: under the frame limit for workers, over the 64 KiB allowed before login.
    raw.send({ kind: 'heartbeat', heartbeat: { timeMs: 1 } } as Frame, new Uint8Array(100 * 1024));
    expectError(await raw.next(), 'E_FRAME_TOO_LARGE');
    await raw.untilClosed();
  });

  it('answers a message far over the frame limit with a coded E_FRAME_TOO_LARGE frame, not only a close', async () => {
    await start();
    const raw = await RawClient.open(server.url);
    await raw.authenticate(bob);
    raw.send(
      { kind: 'updateChunk', updateChunk: { taskId: 'task-1', offset: 0 } } as Frame,
      new Uint8Array(1 << 20),
    );
    expectError(await raw.next(), 'E_FRAME_TOO_LARGE');
    await raw.untilClosed();
  });

  it('refuses signatures of 0 and 10 bytes with E_AUTH_REJECTED, not E_INTERNAL', async () => {
    await start();
    for (const length of [0, 10]) {
      const raw = await RawClient.open(server.url);
      raw.send({
        kind: 'hello',
        hello: { protocolVersion: PROTOCOL_VERSION, account: bob.address, client: 'x' },
      } as Frame);
      await raw.next('challenge');
      raw.send({
        kind: 'authenticate',
        authenticate: { signature: new Uint8Array(length), endpoint: server.url },
      } as Frame);
      expectError(await raw.next(), 'E_AUTH_REJECTED');
      await raw.untilClosed();
    }
    expect(server.metrics.value('fedtune_frames_rejected_total', { code: 'E_INTERNAL' })).to.equal(0);
  });

  it('counts unauthenticated sockets, plain HTTP included, per address: over the limit a client gets 503 E_BUSY', async () => {
    await start({
      limits: { maxFrameBytes: 256 * 1024, maxUnauthenticatedPerAddress: 3, unauthenticatedPerWorker: 2 },
    });
    const held = [await tcp(portOf(server)), await tcp(portOf(server)), await tcp(portOf(server))];
    const refused = new WebSocket(server.url);
    const response = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      refused.once('open', () => reject(new Error('a fourth socket from one address was let in')));
      refused.once('error', () => undefined);
      refused.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
    });
    expect(response.status).to.equal(503);
    expect(JSON.parse(response.body).error.code).to.equal('E_BUSY');
    // One held socket goes away: a worker gets in, and once authenticated it no longer counts; its address gets
    // room for the worker's own downloads (unauthenticatedPerWorker), no more.
    held[0]!.destroy();
    await new Promise((r) => setTimeout(r, 50));
    const worker = await RawClient.open(server.url);
    await worker.authenticate(bob);
    await tcp(portOf(server));
    await tcp(portOf(server));
    await tcp(portOf(server)); // 2 held + 3 = 3 + 2 for the one worker
    const over = await fetch(`${server.httpUrl}/health`).then(
      (r) => r.status,
      () => 0,
    );
    expect(over).to.equal(503);
    worker.ws.terminate();
  });

  it('counts unauthenticated sockets in total across addresses', async () => {
    await start({ limits: { maxFrameBytes: 256 * 1024, maxUnauthenticated: 2 } });
    await tcp(portOf(server));
    await tcp(portOf(server));
    const res = await fetch(`${server.httpUrl}/health`).catch((error: unknown) => error);
    if (res instanceof Response) {
      expect(res.status).to.equal(503);
      expect(((await res.json()) as { error: { code: string } }).error.code).to.equal('E_BUSY');
    } else expect.fail(`expected a 503 E_BUSY, got ${String(res)}`);
  });

  it('closes a socket that sends nothing within the time to authenticate, plain HTTP included', async () => {
    await start({ limits: { maxFrameBytes: 256 * 1024, authTimeoutMs: 300 } });
    const silent = await tcp(portOf(server));
    await new Promise((resolve) => silent.once('close', resolve));
    const raw = await RawClient.open(server.url);
    expectError(await raw.next(), 'E_AUTH_TIMEOUT');
  });

  it('does not time out a worker that answered in time while its login waits on the coordinator (a login storm)', async () => {
    // Admission slower than the time to authenticate stands for a thousand logins queued behind each other's checks.
    let admitted = 0;
    await start({
      limits: { maxFrameBytes: 256 * 1024, authTimeoutMs: 200 },
      hooks: {
        admit: async () => {
          await new Promise((resolve) => setTimeout(resolve, 600));
          admitted++;
          return { ok: true };
        },
        expectedUpload: () => null,
        acceptUpdate: async () => ({ ok: false, code: 'E_UNKNOWN_TASK', message: 'none' }),
      },
    });
    const raw = await RawClient.open(server.url);
    expect((await raw.authenticate(bob)).kind).to.equal('welcome');
    expect(admitted).to.equal(1);
    raw.ws.terminate();
    // One that never sends Authenticate is still closed at the deadline.
    const silent = await RawClient.open(server.url);
    silent.send({
      kind: 'hello',
      hello: { protocolVersion: PROTOCOL_VERSION, account: bob.address, client: 'raw' },
    } as Frame);
    expect((await silent.next()).kind).to.equal('challenge');
    expectError(await silent.next(), 'E_AUTH_TIMEOUT');
  });

  it('refuses an update signed for another network (E_BAD_SIGNATURE): no replay across networks', async () => {
    await start();
    const raw = await RawClient.open(server.url);
    await raw.authenticate(bob);
    const payload = new Uint8Array(64).fill(3);
    const begin = signedBegin(bob, 'task-1', payload);
    const fields = { ...begin, network: '0x02', coordinator: alice.address };
    raw.send({
      kind: 'updateBegin',
      updateBegin: { ...begin, signature: bob.sign(updateMessage(fields)) },
    } as Frame);
    expectError(await raw.next(), 'E_BAD_SIGNATURE');
    // Signed for this network and coordinator, the same update is taken.
    raw.send({ kind: 'updateBegin', updateBegin: begin } as Frame);
    expect((await raw.next()).kind).to.equal('uploadStatus');
    raw.ws.terminate();
  });

  it("cuts an engine's long rejection message to the wire's bound, so the worker can still read the code", async () => {
    await start({
      hooks: {
        admit: async () => ({ ok: true }),
        expectedUpload: () => ({ proposal: 0, round: 1, base: BASE, codec: 'dense' }),
        acceptUpdate: async () => ({ ok: false, code: 'E_UPDATE_SHAPE', message: 'x'.repeat(10_000) }),
      },
    });
    const raw = await RawClient.open(server.url);
    await raw.authenticate(bob);
    const payload = new Uint8Array(8).fill(1);
    raw.send({ kind: 'updateBegin', updateBegin: signedBegin(bob, 'task-1', payload) } as Frame);
    await raw.next('uploadStatus');
    raw.send({ kind: 'updateChunk', updateChunk: { taskId: 'task-1', offset: 0 } } as Frame, payload);
    raw.send({ kind: 'updateEnd', updateEnd: { taskId: 'task-1' } } as Frame);
    const error = await raw.next();
    expectError(error, 'E_UPDATE_SHAPE');
    if (error.kind === 'error') expect(error.error.message.length).to.equal(MAX_MESSAGE_CHARS);
    raw.ws.terminate();
  });

  it('a worker does not sign a challenge from a coordinator other than the one the chain names', async () => {
    await start();
    const worker: WorkerConnection = connectWorker({
      url: server.url,
      signer: bob,
      logger,
      onTask: () => undefined,
      expect: { network: NETWORK, coordinators: [bob.address] },
    });
    closers.push(() => worker.close());
    const error = await worker.ready.then(
      () => expect.fail('a worker must not authenticate with an unexpected coordinator'),
      (e: { code: string }) => e,
    );
    expect(error.code).to.equal('E_WRONG_COORDINATOR');
    expect(server.metrics.value('fedtune_frames_rejected_total', { code: 'E_AUTH_TIMEOUT' })).to.equal(0);
    expect(server.connectedAccounts()).to.deep.equal([]);
  });

  it('a relay that passes a real challenge to a worker cannot log in as it: the signature names the relay', async () => {
    await start();
    await server.close();
    // The coordinator publishes where it is dialled; the relay sits at another address.
    const port = await freePort();
    const url = `ws://127.0.0.1:${port}`;
    await start({ port, endpoints: [url] });
    const relay = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    closers.push(() => new Promise((resolve) => relay.close(resolve)));
    const outcome = new Promise<string>((resolve) => {
      relay.on('connection', (victim) => {
        const upstream = new WebSocket(url);
        upstream.on('message', (data: Buffer) => {
          const frame = decodeKind(data);
          if (frame === 'welcome') resolve('welcome');
          if (frame === 'error') resolve(errorCode(data));
          victim.send(data);
        });
        const early: Buffer[] = [];
        victim.on('message', (data: Buffer) =>
          upstream.readyState === WebSocket.OPEN ? upstream.send(data) : early.push(data),
        );
        upstream.once('open', () => early.splice(0).forEach((data) => upstream.send(data)));
        closers.push(() => upstream.terminate());
      });
    });
    await new Promise((resolve) => relay.once('listening', resolve));
    const relayUrl = `ws://127.0.0.1:${(relay.address() as { port: number }).port}`;
    const worker = connectWorker({ url: relayUrl, signer: bob, logger, onTask: () => undefined });
    closers.push(() => worker.close());
    expect(await outcome).to.equal('E_AUTH_REJECTED');
    // Dialled directly, the same worker is welcome.
    const direct = connectWorker({ url, signer: bob, logger, onTask: () => undefined });
    closers.push(() => direct.close());
    await direct.ready;
  });
});

import { decodeFrame } from '../../proto/index.ts';
import { createServer } from 'node:net';

function decodeKind(data: Buffer): string {
  return decodeFrame(data).frame.kind;
}
function errorCode(data: Buffer): string {
  const frame = decodeFrame(data).frame;
  return frame.kind === 'error' ? frame.error.code : frame.kind;
}
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}
