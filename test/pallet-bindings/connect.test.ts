// connect() reuses the decoded metadata of the process's first API for a chain URL only while the chain there still
// has the same genesis hash and runtime version; a proxy in front of the dev chain plays a runtime upgrade.
import { expect } from 'chai';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { WebSocket, WebSocketServer } from 'ws';
import { startDevnet, type Devnet } from '../../devchain/index.ts';
import { connect } from '../../pallet-bindings/index.ts';

const ALICE = '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY';

/**
 * A JSON-RPC proxy to `target` that adds `specVersionBump` to every runtime version it passes on: in replies
 * (`state_getRuntimeVersion`) and in notifications (`state_subscribeRuntimeVersion`'s first one comes at once, and
 * whichever of the two @polkadot/api reads last is the version it keeps).
 */
async function versionProxy(target: string) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const proxy = { specVersionBump: 0 };
  wss.on('connection', (client) => {
    const upstream = new WebSocket(target);
    const pending: string[] = [];
    upstream.on('open', () => pending.splice(0).forEach((m) => upstream.send(m)));
    upstream.on('message', (data) => {
      const reply = JSON.parse(data.toString()) as {
        result?: { specVersion?: unknown };
        params?: { result?: { specVersion?: unknown } };
      };
      for (const version of [reply.result, reply.params?.result])
        if (proxy.specVersionBump && typeof version?.specVersion === 'number')
          version.specVersion += proxy.specVersionBump;
      client.send(JSON.stringify(reply));
    });
    upstream.on('close', () => client.close());
    client.on('close', () => upstream.close());
    client.on('message', (data) =>
      upstream.readyState === WebSocket.OPEN ? upstream.send(data.toString()) : pending.push(data.toString()),
    );
  });
  const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
  const close = () =>
    new Promise<void>((resolve) => {
      for (const c of wss.clients) c.terminate();
      wss.close(() => resolve());
    });
  return Object.assign(proxy, { url, close });
}

/** Connects, reads Alice's balance, closes; returns what connect logged about the metadata. */
async function connectOnce(url: string) {
  const lines: { metadataReused?: boolean; msg?: string }[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  const client = await connect({ url, logger });
  try {
    const account = (await client.api.query.system.account(ALICE)) as unknown as {
      data: { free: { toBigInt(): bigint } };
    };
    const version = client.api.runtimeVersion.specVersion.toNumber();
    return {
      free: account.data.free.toBigInt(),
      version,
      reused: lines.find((l) => l.msg === 'connected to chain')?.metadataReused,
    };
  } finally {
    await client.close();
  }
}

describe('pallet-bindings: connect reuses decoded metadata per chain URL', function () {
  this.timeout(120_000);
  let devnet: Devnet;
  let proxy: Awaited<ReturnType<typeof versionProxy>>;

  before(async () => {
    devnet = await startDevnet({ port: 0, logger: pino({ level: 'silent' }), blockMode: 'manual' });
    proxy = await versionProxy(devnet.url);
  });
  after(async () => {
    await proxy?.close();
    await devnet?.close();
  });

  it('decodes once, reuses while the chain is the same, and decodes again after a runtime upgrade', async () => {
    const first = await connectOnce(proxy.url);
    expect(first.reused).to.equal(false);
    expect(first.free > 0n).to.equal(true);

    const second = await connectOnce(proxy.url);
    expect(second).to.deep.equal({ ...first, reused: true });

    proxy.specVersionBump = 1;
    const upgraded = await connectOnce(proxy.url);
    expect(upgraded).to.deep.equal({ free: first.free, version: first.version + 1, reused: false });
    // The upgraded chain's API is the one kept now.
    expect((await connectOnce(proxy.url)).reused).to.equal(true);
  });
});
