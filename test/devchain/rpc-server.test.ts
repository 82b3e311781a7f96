// The dev chain's JSON-RPC server on its own, with a handler written here: requests, batches, malformed and oversized
// messages, subscriptions and their cancellation, and HTTP POST. The chain behind it is tested through startDevnet.
import { expect } from 'chai';
import { request } from 'node:http';
import { pino } from 'pino';
import { WebSocket } from 'ws';
import { MAX_REQUEST_BYTES, startRpcServer, type RpcServer } from '../../devchain/rpc-server.ts';

const logger = pino({ level: 'silent' });

/** A coded error as chopsticks-core's ResponseError carries it. */
class Coded extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

function post(port: number, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/' }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('devchain: the JSON-RPC server', function () {
  let server: RpcServer;
  let ws: WebSocket;
  const cancelled: string[] = [];
  const messages: unknown[] = [];
  let notify: ((data: unknown) => void) | null = null;

  before(async () => {
    server = await startRpcServer(
      async (req, subscriptions) => {
        if (req.method === 'echo') return req.params;
        if (req.method === 'nothing') return undefined;
        if (req.method === 'fails') throw new Error('broken');
        if (req.method === 'coded') throw new Coded(-32602, 'bad params');
        if (req.method === 'subscribe') {
          notify = subscriptions.subscribe('note', 'sub-1', () => cancelled.push('sub-1'));
          return 'sub-1';
        }
        throw new Coded(-32601, `Method not found: ${req.method}`);
      },
      0,
      '127.0.0.1',
      logger,
    );
    ws = new WebSocket(`ws://127.0.0.1:${server.port}`);
    ws.on('message', (m: Buffer) => messages.push(JSON.parse(m.toString())));
    await new Promise((resolve) => ws.once('open', resolve));
  });
  after(async () => {
    ws.terminate();
    await server.close();
  });

  /** Sends a raw frame and waits for the next message. */
  async function exchange(frame: string): Promise<unknown> {
    const before = messages.length;
    ws.send(frame);
    const until = Date.now() + 5_000;
    while (messages.length === before) {
      if (Date.now() > until) throw new Error(`no reply to ${frame.slice(0, 80)}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return messages[before];
  }

  it('answers a request with its id, null for no result, and a handler error as that request error', async () => {
    expect(await exchange('{"jsonrpc":"2.0","id":1,"method":"echo","params":[1,"a"]}')).to.deep.equal({
      jsonrpc: '2.0',
      id: 1,
      result: [1, 'a'],
    });
    expect(await exchange('{"jsonrpc":"2.0","id":"x","method":"nothing"}')).to.deep.equal({
      jsonrpc: '2.0',
      id: 'x',
      result: null,
    });
    expect(await exchange('{"jsonrpc":"2.0","id":2,"method":"coded","params":[]}')).to.deep.equal({
      jsonrpc: '2.0',
      id: 2,
      error: { code: -32602, message: 'bad params' },
    });
    expect(await exchange('{"jsonrpc":"2.0","id":3,"method":"fails","params":[]}')).to.deep.equal({
      jsonrpc: '2.0',
      id: 3,
      error: { code: -32603, message: 'Internal Error: broken' },
    });
    expect(await exchange('{"jsonrpc":"2.0","id":4,"method":"nope","params":[]}')).to.deep.include({
      error: { code: -32601, message: 'Method not found: nope' },
    });
  });

  it('answers a batch in order', async () => {
    const reply = await exchange(
      '[{"jsonrpc":"2.0","id":1,"method":"echo","params":[1]},{"jsonrpc":"2.0","id":2,"method":"coded","params":[]}]',
    );
    expect(reply).to.deep.equal([
      { jsonrpc: '2.0', id: 1, result: [1] },
      { jsonrpc: '2.0', id: 2, error: { code: -32602, message: 'bad params' } },
    ]);
  });

  it('says -32600 to malformed messages and keeps the connection', async () => {
    const invalid = { jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Invalid JSON Request' } };
    for (const frame of [
      'not json',
      '42',
      '[]',
      '{"id":1,"method":"echo"}',
      '{"jsonrpc":"2.0","id":1,"method":7}',
      '{"jsonrpc":"2.0","id":1.5,"method":"echo"}',
      '{"jsonrpc":"2.0","id":1,"method":"echo","params":{"a":1}}',
      '[{"jsonrpc":"2.0","id":1,"method":"echo"},"x"]',
    ])
      expect(await exchange(frame), frame).to.deep.equal(invalid);
    expect(await exchange('{"jsonrpc":"2.0","id":9,"method":"echo","params":[]}')).to.deep.include({ id: 9 });
  });

  it('sends notifications to a subscription and cancels it when the connection closes', async () => {
    const other = new WebSocket(`ws://127.0.0.1:${server.port}`);
    const got: unknown[] = [];
    other.on('message', (m: Buffer) => got.push(JSON.parse(m.toString())));
    await new Promise((resolve) => other.once('open', resolve));
    other.send('{"jsonrpc":"2.0","id":1,"method":"subscribe","params":[]}');
    while (got.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    notify!({ head: 7 });
    while (got.length === 1) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(got[1]).to.deep.equal({
      jsonrpc: '2.0',
      method: 'note',
      params: { result: { head: 7 }, subscription: 'sub-1' },
    });
    other.close();
    while (cancelled.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(cancelled).to.deep.equal(['sub-1']);
  });

  it('closes a connection that sends more than the largest request, and serves others', async () => {
    const big = new WebSocket(`ws://127.0.0.1:${server.port}`);
    await new Promise((resolve) => big.once('open', resolve));
    const closed = new Promise<number>((resolve) => big.once('close', (code) => resolve(code)));
    big.send(Buffer.alloc(MAX_REQUEST_BYTES + 1, 0x20));
    expect(await closed).to.equal(1009);
    expect(await exchange('{"jsonrpc":"2.0","id":5,"method":"echo","params":[]}')).to.deep.include({ id: 5 });
  });

  it('answers a request over the size limit on HTTP with 413 and a JSON-RPC error, and serves the next', async () => {
    const small = await startRpcServer(async (req) => req.params, 0, '127.0.0.1', logger, 1024);
    try {
      const big = await post(
        small.port,
        `{"jsonrpc":"2.0","id":1,"method":"echo","params":["${'x'.repeat(4096)}"]}`,
      );
      expect(big.status).to.equal(413);
      expect(JSON.parse(big.text)).to.deep.equal({
        jsonrpc: '2.0',
        id: null,
        error: { code: -32600, message: 'Request too large' },
      });
      const ok = await post(small.port, '{"jsonrpc":"2.0","id":2,"method":"echo","params":[3]}');
      expect(JSON.parse(ok.text)).to.deep.equal({ jsonrpc: '2.0', id: 2, result: [3] });
    } finally {
      await small.close();
    }
  });

  it('answers HTTP POST, and refuses subscriptions and other verbs there', async () => {
    const ok = await post(server.port, '{"jsonrpc":"2.0","id":1,"method":"echo","params":[2]}');
    expect(ok.status).to.equal(200);
    expect(JSON.parse(ok.text)).to.deep.equal({ jsonrpc: '2.0', id: 1, result: [2] });
    const bad = await post(server.port, '{');
    expect(JSON.parse(bad.text).error.code).to.equal(-32600);
    const sub = await post(server.port, '{"jsonrpc":"2.0","id":2,"method":"subscribe","params":[]}');
    expect(JSON.parse(sub.text).error.message).to.match(/WebSocket/);
    const get = await fetch(`http://127.0.0.1:${server.port}/`);
    expect(get.status).to.equal(405);
  });
});
