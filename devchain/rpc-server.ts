// The dev chain's JSON-RPC endpoint: WebSocket (with subscriptions) and HTTP POST on one port, each request handed to
// a handler (chopsticks-core's methods behind devchain/index.ts' own answers). It takes the place of the chopsticks CLI
// package's server, which brought that package's database, plugins and command line into every install.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { WebSocket, WebSocketServer } from 'ws';

/** The largest request accepted, in bytes: a runtime upgrade's `system.setCode` is the biggest a dev chain sees. */
export const MAX_REQUEST_BYTES = 100 * 1024 * 1024;

/** chopsticks-core's subscription interface: `subscribe` returns the function that sends one notification. */
export interface SubscriptionManager {
  subscribe: (method: string, subid: string, onCancel?: () => void) => (data: unknown) => void;
  unsubscribe: (subid: string) => void;
}

export interface RpcRequest {
  id?: number | string | null;
  method: string;
  params: unknown[];
}

export type RpcHandler = (request: RpcRequest, subscriptions: SubscriptionManager) => Promise<unknown>;

export interface RpcServer {
  port: number;
  close(): Promise<void>;
}

type RpcError = { code: number; message: string };
type Reply = { jsonrpc: '2.0'; id: RpcRequest['id'] | null } & ({ result: unknown } | { error: RpcError });

const INVALID_REQUEST: RpcError = { code: -32600, message: 'Invalid JSON Request' };

/** One request object as JSON-RPC 2.0 defines it; null when it is not one. */
function asRequest(value: unknown): RpcRequest | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const { jsonrpc, id, method, params } = value as Record<string, unknown>;
  if (jsonrpc !== '2.0' || typeof method !== 'string') return null;
  if (!(id === undefined || id === null || typeof id === 'string' || Number.isInteger(id))) return null;
  if (!(params === undefined || Array.isArray(params))) return null;
  return { id: id as RpcRequest['id'], method, params: (params as unknown[] | undefined) ?? [] };
}

/** A message's requests: one, or a batch (a non-empty array of them); null when the message is not valid JSON-RPC. */
function parse(text: string): { batch: boolean; requests: RpcRequest[] } | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (!Array.isArray(value)) {
    const one = asRequest(value);
    return one ? { batch: false, requests: [one] } : null;
  }
  const requests = value.map(asRequest);
  if (requests.length === 0 || requests.some((r) => r === null)) return null;
  return { batch: true, requests: requests as RpcRequest[] };
}

/** An error as the reply carries it: a handler's coded error (chopsticks' ResponseError) as it is, any other as -32603. */
function toRpcError(error: unknown): RpcError {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (Number.isInteger(code) && typeof message === 'string') return { code: code as number, message };
  return { code: -32603, message: `Internal ${String(error)}` };
}

/** HTTP has no way to notify: a subscription method over POST is refused. */
const refuseSubscription = (): never => {
  throw new Error('Subscription is not supported over HTTP: connect with WebSocket');
};
const NO_SUBSCRIPTIONS: SubscriptionManager = {
  subscribe: refuseSubscription,
  unsubscribe: refuseSubscription,
};

function readBody(req: IncomingMessage, maxBytes: number): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      if (size > maxBytes) return;
      size += chunk.length;
      if (size > maxBytes) {
        // No more is read or kept: the reply says why, and the connection closes after it.
        req.pause();
        resolve(null);
        return;
      }
      parts.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

/**
 * Listens on `host:port` (0: any free port) and answers JSON-RPC 2.0 with `handle`. A malformed message gets error
 * -32600 and the connection stays open; a handler's failure is that request's error, not the server's.
 */
export async function startRpcServer(
  handle: RpcHandler,
  port: number,
  host: string,
  logger: Logger,
  /** The largest request (WebSocket message or HTTP body) in bytes; tests pass a small one. */
  maxRequestBytes = MAX_REQUEST_BYTES,
): Promise<RpcServer> {
  const answer = async (request: RpcRequest, subscriptions: SubscriptionManager): Promise<Reply> => {
    try {
      const result = await handle(request, subscriptions);
      return { jsonrpc: '2.0', id: request.id ?? null, result: result ?? null };
    } catch (error) {
      logger.debug({ method: request.method, err: error }, 'rpc request failed');
      return { jsonrpc: '2.0', id: request.id ?? null, error: toRpcError(error) };
    }
  };

  const http: Server = createServer(async (req, res) => {
    const reply = (status: number, body?: unknown) => {
      res.writeHead(status, {
        'Access-Control-Allow-Origin': '*',
        'Access-Control-Allow-Methods': 'POST',
        'Access-Control-Allow-Headers': '*',
        'Content-Type': 'application/json',
      });
      res.end(body === undefined ? undefined : JSON.stringify(body));
    };
    if (req.method === 'OPTIONS') return reply(204);
    if (req.method !== 'POST')
      return reply(405, {
        jsonrpc: '2.0',
        id: null,
        error: { code: -32600, message: 'Only POST is supported' },
      });
    let body: string | null;
    try {
      body = await readBody(req, maxRequestBytes);
    } catch (error) {
      // The request broke off (the client went away): nobody is left to answer.
      logger.debug({ err: error }, 'rpc request over HTTP broke off');
      return;
    }
    if (body === null) {
      res.setHeader('Connection', 'close');
      res.once('finish', () => req.socket.destroy());
      return reply(413, { jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Request too large' } });
    }
    const parsed = parse(body);
    if (!parsed) return reply(200, { jsonrpc: '2.0', id: null, error: INVALID_REQUEST });
    const replies = await Promise.all(parsed.requests.map((r) => answer(r, NO_SUBSCRIPTIONS)));
    // Notifications (no id) get no reply.
    const sent = replies.filter((_, i) => parsed.requests[i]!.id !== undefined);
    if (sent.length === 0) return reply(204);
    return reply(200, parsed.batch ? sent : sent[0]);
  });

  const wss = new WebSocketServer({ server: http, maxPayload: maxRequestBytes });
  wss.on('connection', (ws) => {
    const send = (data: unknown) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(data));
    };
    const cancels = new Map<string, () => void>();
    const subscriptions: SubscriptionManager = {
      subscribe: (method, subid, onCancel = () => undefined) => {
        cancels.set(subid, onCancel);
        return (result) => {
          if (cancels.has(subid)) send({ jsonrpc: '2.0', method, params: { result, subscription: subid } });
        };
      },
      unsubscribe: (subid) => {
        const cancel = cancels.get(subid);
        cancels.delete(subid);
        cancel?.();
      },
    };
    // (Not ws.removeAllListeners(): the server's own close listener takes the client out of wss.clients.)
    const cancelAll = () => {
      for (const [subid, cancel] of [...cancels]) {
        cancels.delete(subid);
        cancel();
      }
    };
    ws.on('close', cancelAll);
    ws.on('error', cancelAll);
    ws.on('message', async (message: Buffer) => {
      const parsed = parse(message.toString('utf8'));
      if (!parsed) {
        send({ jsonrpc: '2.0', id: null, error: INVALID_REQUEST });
        return;
      }
      const replies = await Promise.all(parsed.requests.map((r) => answer(r, subscriptions)));
      send(parsed.batch ? replies : replies[0]);
    });
  });

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(port, host, () => {
      http.off('error', reject);
      resolve();
    });
  });
  return {
    port: (http.address() as AddressInfo).port,
    async close() {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
