// Time on the dev chain: empty blocks on an interval (library and `fedtune devnet`), and `fedtune chain advance N`,
// which a node without chopsticks' dev RPC refuses with a code.
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import type { ApiPromise } from '@polkadot/api';
import { WebSocket, WebSocketServer } from 'ws';
import { startDevnet, type Devnet } from '../../devchain/index.ts';
import { BIN, fedtune, inProcess } from '../run-cli.ts';
import { connect, logger } from './helpers.ts';

const head = async (api: ApiPromise) => (await api.rpc.chain.getHeader()).number.toNumber();

/** Polls until the head reaches `number`; fails the test after `ms` (a generous bound, not a timing assertion). */
async function headReaches(api: ApiPromise, number: number, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  while ((await head(api)) < number) {
    if (Date.now() > until) throw new Error(`head stayed below #${number}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function signedExtrinsics(api: ApiPromise, number: number): Promise<number> {
  const hash = await api.rpc.chain.getBlockHash(number);
  const { block } = await api.rpc.chain.getBlock(hash);
  return block.extrinsics.filter((x) => x.isSigned).length;
}

/**
 * A JSON-RPC proxy in front of the devnet that answers dev_* methods as a real node does ("Method not found"), so
 * the CLI sees a chain without chopsticks' dev RPC.
 */
async function realNodeProxy(target: string): Promise<{ url: string; close: () => Promise<void> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  wss.on('connection', (client) => {
    const upstream = new WebSocket(target);
    const pending: string[] = [];
    upstream.on('open', () => pending.splice(0).forEach((m) => upstream.send(m)));
    upstream.on('message', (data) => client.send(data.toString()));
    upstream.on('close', () => client.close());
    client.on('close', () => upstream.close());
    client.on('message', (data) => {
      const text = data.toString();
      const request = JSON.parse(text) as { id: number; method: string };
      if (request.method.startsWith('dev_')) {
        client.send(
          JSON.stringify({
            jsonrpc: '2.0',
            id: request.id,
            error: { code: -32601, message: 'Method not found' },
          }),
        );
      } else if (upstream.readyState === WebSocket.OPEN) upstream.send(text);
      else pending.push(text);
    });
  });
  const { port } = wss.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };
}

describe('devchain: blocks on an interval', function () {
  this.timeout(120_000);
  let devnet: Devnet;
  let api: ApiPromise;

  before(async () => {
    devnet = await startDevnet({ port: 0, logger, blockMode: 'instant', blockIntervalMs: 300 });
    api = await connect(devnet.url);
  });
  after(async () => {
    await api?.disconnect();
    await devnet?.close();
  });

  it('builds empty blocks while nobody transacts', async () => {
    expect(devnet.blockIntervalMs).to.equal(300);
    const start = await head(api);
    await headReaches(api, start + 3);
    for (let n = start + 1; n <= start + 3; n++) expect(await signedExtrinsics(api, n), `#${n}`).to.equal(0);
    expect((await api.rpc.chain.getFinalizedHead()).toHex()).to.equal(
      (await api.rpc.chain.getBlockHash(await head(api))).toHex(),
    );
  });

  it('rejects a negative interval with a code', async () => {
    const error = await startDevnet({ port: 0, logger, blockIntervalMs: -1 }).then(
      () => null,
      (e: unknown) => e as { code?: string },
    );
    expect(error?.code).to.equal('E_DEVNET_BLOCK_INTERVAL');
  });
});

describe('devchain: fedtune chain advance', function () {
  this.timeout(120_000);
  let devnet: Devnet;
  let api: ApiPromise;

  before(async () => {
    devnet = await startDevnet({ port: 0, logger, blockMode: 'instant' });
    api = await connect(devnet.url);
  });
  after(async () => {
    await api?.disconnect();
    await devnet?.close();
  });

  it('builds exactly N blocks on a dev chain', async () => {
    const start = await head(api);
    // A process: what reaches its terminal is checked, not only what main() prints.
    const result = await fedtune(['chain', 'advance', '3', '--chain', devnet.url, '--json'], {
      FEDTUNE_LOG_LEVEL: 'trace',
    });
    expect(result.status, result.stderr).to.equal(0);
    // @polkadot/api's fallback notice for this runtime stays off the terminal at every log level.
    expect(result.stderr).to.not.include('MetadataApi');
    const out = JSON.parse(result.stdout) as { built: number; head: { number: number; hash: string } };
    expect(out.built).to.equal(3);
    expect(out.head.number).to.equal(start + 3);
    expect(await head(api)).to.equal(start + 3);
    expect(out.head.hash).to.equal((await api.rpc.chain.getBlockHash(start + 3)).toHex());
  });

  it('exits 2 on a count that is not a positive whole number', async () => {
    const result = await inProcess(['chain', 'advance', '0', '--chain', devnet.url]);
    expect(result.status).to.equal(2);
    expect(result.stderr).to.include('E_USAGE');
  });

  it('says a chain without dev_newBlock is not a dev chain', async () => {
    const proxy = await realNodeProxy(devnet.url);
    try {
      const start = await head(api);
      const result = await inProcess(['chain', 'advance', '2', '--chain', proxy.url]);
      expect(result.status).to.equal(1);
      expect(result.stderr).to.include('E_NOT_DEV_CHAIN');
      expect(result.stderr).to.include('fedtune devnet');
      expect(await head(api)).to.equal(start);
    } finally {
      await proxy.close();
    }
  });
});

describe('devchain: fedtune devnet --block-interval', function () {
  this.timeout(120_000);
  let child: ChildProcess | undefined;
  let api: ApiPromise | undefined;

  after(async () => {
    await api?.disconnect();
    if (child && child.exitCode === null) {
      child.kill('SIGKILL');
      await new Promise((resolve) => child!.once('exit', resolve));
    }
  });

  it('refuses an interval with manual blocks', async () => {
    const result = await inProcess(['devnet', '--tmp', '--block-mode', 'manual', '--block-interval', '1']);
    expect(result.status).to.equal(2);
    expect(result.stderr).to.include('--block-interval');
  });

  it('moves the chain on by itself and says how to reach it on another port', async () => {
    child = spawn(process.execPath, [BIN, 'devnet', '--tmp', '--port', '0', '--block-interval', '0.5'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, FEDTUNE_LOG_LEVEL: 'warn' },
    });
    let out = '';
    const url = await new Promise<string>((resolve, reject) => {
      child!.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const match = /export FEDTUNE_CHAIN=(ws:\/\/\S+)/.exec(out);
        if (match) resolve(match[1]!);
      });
      child!.once('exit', (code) => reject(new Error(`devnet exited with ${code}: ${out}`)));
    });
    expect(out).to.include('an empty one after 0.5 s idle');
    api = await connect(url);
    const start = await head(api);
    await headReaches(api, start + 2);
    expect(await signedExtrinsics(api, start + 1)).to.equal(0);
  });
});
