// The coordinator's WebSocket protocol against real workers and hand-made bad frames: authentication, uploads,
// resume after a dropped connection, and a coded error for each kind of bad input while other workers carry on.
import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { pino } from 'pino';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import type { KeyringPair } from '@polkadot/keyring/types';
import {
  startCoordinatorServer,
  type CoordinatorServer,
  type UploadedUpdate,
} from '../../coordinator/server.ts';
import { connectWorker, type WorkerConnection } from '../../worker/index.ts';
import { PROTOCOL_VERSION, authMessage, type Frame } from '../../proto/index.ts';
import { BASE, RawClient, expectError, signedBegin } from './raw-client.ts';

const logger = pino({ level: process.env.TEST_LOG ?? 'silent' });

describe('coordinator: websocket server and worker connection', () => {
  let keyring: Keyring;
  let alice: KeyringPair, bob: KeyringPair, charlie: KeyringPair, eve: KeyringPair;
  let server: CoordinatorServer;
  let accepted: UploadedUpdate[];
  let workers: WorkerConnection[];

  before(async () => {
    await cryptoWaitReady();
    keyring = new Keyring({ type: 'sr25519' });
    [alice, bob, charlie, eve] = ['//Alice', '//Bob', '//Charlie', '//Eve'].map((uri) =>
      keyring.addFromUri(uri),
    );
  });

  beforeEach(async () => {
    accepted = [];
    workers = [];
    const registered = new Set([bob.address, charlie.address]);
    server = await startCoordinatorServer({
      coordinator: alice.address,
      network: '0x01',
      logger,
      limits: { maxFrameBytes: 256 * 1024, maxUpdateBytes: 4 * 1024 * 1024 },
      hooks: {
        admit: async (account) =>
          registered.has(account)
            ? { ok: true }
            : { ok: false, code: 'E_NOT_REGISTERED', message: `${account} is not a registered worker` },
        expectedUpload: (_account, taskId) =>
          taskId.startsWith('task-') ? { proposal: 0, round: 1, base: BASE, codec: 'dense' } : null,
        acceptUpdate: async (update) => {
          if (update.payload.length % 4 !== 0)
            return { ok: false, code: 'E_UPDATE_SHAPE', message: 'not whole float32 values' };
          accepted.push(update);
          return {
            ok: true,
            updateHash: new Uint8Array(createHash('sha256').update(update.payload).digest()),
          };
        },
      },
    });
  });

  afterEach(async () => {
    await Promise.all(workers.map((w) => w.close()));
    await server.close();
  });

  const worker = (pair: KeyringPair, onTask: (t: unknown) => void = () => undefined) => {
    const w = connectWorker({
      url: server.url,
      signer: pair,
      logger,
      onTask,
      reconnect: { minMs: 50, maxMs: 200 },
      chunkBytes: 64 * 1024,
    });
    workers.push(w);
    return w;
  };

  it('authenticates a registered worker, delivers a task and acknowledges its chunked upload', async () => {
    const tasks: unknown[] = [];
    const w = worker(bob, (t) => tasks.push(t));
    await w.ready;
    expect(server.connectedAccounts()).to.deep.equal([bob.address]);
    expect(
      server.send(bob.address, {
        kind: 'task',
        task: {
          taskId: 'task-1',
          proposal: 0,
          round: 1,
          base: { id: BASE, bytes: 10, url: server.httpUrl },
          shards: [0],
          datasetRoot: BASE,
          modelJson: '{}',
          hyperparamsJson: '{}',
          codecJson: '{"codec":"dense"}',
          deadlineMs: Date.now() + 60_000,
        },
      }),
    ).to.equal(true);
    const payload = new Uint8Array(new Float32Array(300_000).map((_, i) => Math.sin(i)).buffer);
    const ack = await w.upload({
      taskId: 'task-1',
      proposal: 0,
      round: 1,
      base: BASE,
      codec: 'dense',
      payload,
      samples: 100,
      shards: [0],
      trainLoss: 1,
    });
    expect(tasks).to.have.length(1);
    expect(accepted).to.have.length(1);
    expect(Buffer.from(accepted[0]!.payload).equals(Buffer.from(payload))).to.equal(true);
    expect(Buffer.from(ack.updateHash).toString('hex')).to.equal(
      createHash('sha256').update(payload).digest('hex'),
    );
    expect(server.metrics.value('fedtune_update_bytes_received_total')).to.equal(payload.length);
  });

  it('resumes an upload after the connection drops instead of starting over', async () => {
    const w = worker(bob);
    await w.ready;
    const payload = new Uint8Array(1024 * 1024).map((_, i) => i & 0xff);
    let cut = false;
    const ack = await w.upload({
      taskId: 'task-2',
      proposal: 0,
      round: 1,
      base: BASE,
      codec: 'dense',
      payload,
      samples: 10,
      shards: [0],
      trainLoss: 1,
      onProgress: (sent) => {
        if (!cut && sent >= payload.length / 2) {
          cut = true;
          expect(server.disconnect(bob.address)).to.equal(true);
        }
      },
    });
    expect(cut).to.equal(true);
    expect(ack.taskId).to.equal('task-2');
    expect(accepted).to.have.length(1);
    expect(Buffer.from(accepted[0]!.payload).equals(Buffer.from(payload))).to.equal(true);
    // Resumed, not restarted: fewer than twice the payload crossed the wire.
    const received = server.metrics.value('fedtune_update_bytes_received_total');
    expect(received).to.be.at.least(payload.length);
    expect(received).to.be.lessThan(2 * payload.length);
  });

  it('holds at most maxPendingUploadBytes of uploads: a worker over the budget is told E_BUSY and gets in later', async () => {
    await server.close();
    server = await startCoordinatorServer({
      coordinator: alice.address,
      network: '0x01',
      logger,
      limits: { maxFrameBytes: 256 * 1024, maxPendingUploadBytes: 1.5 * 1024 * 1024 },
      hooks: {
        admit: async () => ({ ok: true }),
        expectedUpload: () => ({ proposal: 0, round: 1, base: BASE, codec: 'dense' }),
        acceptUpdate: async (update) => {
          accepted.push(update);
          return { ok: true, updateHash: new Uint8Array(32) };
        },
      },
    });
    // Charlie (by hand) begins a 1 MiB upload and holds it.
    const raw = await RawClient.open(server.url);
    await raw.authenticate(charlie);
    const held = new Uint8Array(1024 * 1024).fill(7);
    raw.send({ kind: 'updateBegin', updateBegin: signedBegin(charlie, 'task-held', held) } as Frame);
    expect((await raw.next('uploadStatus')).kind).to.equal('uploadStatus');
    // Bob's 1 MiB would exceed the budget: refused with E_BUSY, retried by the worker until Charlie is done.
    const w = worker(bob);
    await w.ready;
    const payload = new Uint8Array(1024 * 1024).fill(9);
    const upload = w.upload({
      taskId: 'task-bob',
      proposal: 0,
      round: 1,
      base: BASE,
      codec: 'dense',
      payload,
      samples: 1,
      shards: [0],
      trainLoss: 1,
    });
    while (server.metrics.value('fedtune_frames_rejected_total', { code: 'E_BUSY' }) === 0)
      await new Promise((r) => setTimeout(r, 20));
    expect(accepted).to.have.length(0);
    for (let offset = 0; offset < held.length; offset += 128 * 1024) {
      raw.send(
        { kind: 'updateChunk', updateChunk: { taskId: 'task-held', offset } } as Frame,
        held.subarray(offset, offset + 128 * 1024),
      );
    }
    raw.send({ kind: 'updateEnd', updateEnd: { taskId: 'task-held' } } as Frame);
    expect((await raw.next('ack')).kind).to.equal('ack');
    const ack = await upload;
    expect(ack.taskId).to.equal('task-bob');
    expect(accepted.map((u) => u.begin.taskId)).to.deep.equal(['task-held', 'task-bob']);
    raw.ws.terminate();
  });

  it('refuses an unregistered account and a forged authentication, and says why', async () => {
    const w = worker(eve);
    const error = await w.ready.then(
      () => expect.fail('an unregistered account must not be admitted'),
      (e: { code: string }) => e,
    );
    expect(error.code).to.equal('E_NOT_REGISTERED');

    const raw = await RawClient.open(server.url);
    raw.send({
      kind: 'hello',
      hello: { protocolVersion: PROTOCOL_VERSION, account: bob.address, client: 'forger' },
    } as Frame);
    const challenge = await raw.next('challenge');
    if (challenge.kind !== 'challenge') throw new Error('no challenge');
    // Charlie signs while claiming to be Bob.
    raw.send({
      kind: 'authenticate',
      authenticate: {
        signature: charlie.sign(authMessage(challenge.challenge, bob.address, server.url)),
        endpoint: server.url,
      },
    } as Frame);
    expectError(await raw.next(), 'E_AUTH_REJECTED');
    await raw.untilClosed();

    const old = await RawClient.open(server.url);
    old.send({ kind: 'hello', hello: { protocolVersion: 99, account: bob.address, client: 'old' } } as Frame);
    expectError(await old.next(), 'E_VERSION');
  });

  it('rejects forged, replayed, oversized and garbage input with codes while an honest worker completes', async () => {
    const honest = worker(charlie);
    await honest.ready;
    const raw = await RawClient.open(server.url);
    await raw.authenticate(bob);
    const payload = new Uint8Array(4096).fill(7);

    // A forged update signature: signed by someone else.
    raw.send({ kind: 'updateBegin', updateBegin: signedBegin(eve, 'task-3', payload) } as Frame);
    expectError(await raw.next(), 'E_BAD_SIGNATURE');
    // A replay from another round (validly signed for round 0).
    raw.send({
      kind: 'updateBegin',
      updateBegin: signedBegin(bob, 'task-3', payload, { round: 0 }),
    } as Frame);
    expectError(await raw.next(), 'E_WRONG_ROUND');
    // A declared size past the limit.
    raw.send({
      kind: 'updateBegin',
      updateBegin: signedBegin(bob, 'task-3', payload, { payloadBytes: 8 * 1024 * 1024 }),
    } as Frame);
    expectError(await raw.next(), 'E_UPDATE_TOO_LARGE');
    // Bytes that do not hash to the signed payload hash.
    raw.send({ kind: 'updateBegin', updateBegin: signedBegin(bob, 'task-3', payload) } as Frame);
    expect((await raw.next()).kind).to.equal('uploadStatus');
    raw.send(
      { kind: 'updateChunk', updateChunk: { taskId: 'task-3', offset: 0 } } as Frame,
      new Uint8Array(4096).fill(8),
    );
    raw.send({ kind: 'updateEnd', updateEnd: { taskId: 'task-3' } } as Frame);
    expectError(await raw.next(), 'E_PAYLOAD_HASH');
    // A payload the round engine refuses on content.
    const odd = new Uint8Array(4095);
    raw.send({ kind: 'updateBegin', updateBegin: signedBegin(bob, 'task-4', odd) } as Frame);
    await raw.next('uploadStatus');
    raw.send({ kind: 'updateChunk', updateChunk: { taskId: 'task-4', offset: 0 } } as Frame, odd);
    raw.send({ kind: 'updateEnd', updateEnd: { taskId: 'task-4' } } as Frame);
    expectError(await raw.next(), 'E_UPDATE_SHAPE');
    // The connection is still usable after non-fatal rejections.
    raw.send({ kind: 'updateBegin', updateBegin: signedBegin(bob, 'nope', payload) } as Frame);
    expectError(await raw.next(), 'E_UNKNOWN_TASK');

    // An oversized frame is refused and the connection closed.
    raw.send(
      { kind: 'updateChunk', updateChunk: { taskId: 'task-3', offset: 0 } } as Frame,
      new Uint8Array(300 * 1024),
    );
    expectError(await raw.next(), 'E_FRAME_TOO_LARGE');
    await raw.untilClosed();

    // Garbage bytes, and a text message.
    const garbage = await RawClient.open(server.url);
    garbage.ws.send(Buffer.from([0xde, 0xad, 0xbe, 0xef, 1, 2, 3]));
    expectError(await garbage.next(), 'E_FRAME_MALFORMED');
    const text = await RawClient.open(server.url);
    text.ws.send('hello');
    expectError(await text.next(), 'E_FRAME_MALFORMED');

    // Meanwhile the honest worker's update goes through.
    const ack = await honest.upload({
      taskId: 'task-9',
      proposal: 0,
      round: 1,
      base: BASE,
      codec: 'dense',
      payload,
      samples: 5,
      shards: [1],
      trainLoss: 2,
    });
    expect(ack.taskId).to.equal('task-9');
    expect(accepted.map((u) => u.account)).to.deep.equal([charlie.address]);

    const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text();
    expect(metrics).to.match(/fedtune_frames_rejected_total\{code="E_BAD_SIGNATURE"\} 1/);
    expect(metrics).to.match(/fedtune_connected_workers 1/);
    const health = (await (await fetch(`${server.httpUrl}/health`)).json()) as { status: string };
    expect(health.status).to.equal('ok');
  });
});
