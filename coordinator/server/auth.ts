// The Hello and Authenticate frames: every field is bounded before it is parsed, the challenge names network and
// coordinator, and the worker's signature covers them and the endpoint it dialled (docs/wire.md).
import { randomBytes } from 'node:crypto';
import { decodeAddress } from '@polkadot/util-crypto';
import {
  MAX_ACCOUNT_CHARS,
  PROTOCOL_VERSION,
  authMessage,
  type Authenticate,
  type Hello,
} from '../../proto/index.ts';
import { FrameFault, type Connection, type ServerContext } from './types.ts';

/** sr25519 and ed25519 signatures are 64 bytes, ecdsa 65: anything else cannot verify and is not parsed. */
export const SIGNATURE_LENGTHS = new Set([64, 65]);

export function hello(ctx: ServerContext, conn: Connection, frame: Hello): void {
  if (conn.state !== 'hello') throw new FrameFault('E_UNEXPECTED_FRAME', 'hello was already received', true);
  const { protocolVersion, account } = frame;
  if (protocolVersion !== PROTOCOL_VERSION) {
    throw new FrameFault(
      'E_VERSION',
      `this coordinator speaks protocol version ${PROTOCOL_VERSION}, the worker ${protocolVersion}: upgrade the older side`,
      true,
    );
  }
  // Base58 decoding is quadratic in the input: the length is bounded first (the wire limits do too; this is the rule).
  if (account.length > MAX_ACCOUNT_CHARS) {
    throw new FrameFault(
      'E_BAD_ACCOUNT',
      `an account is at most ${MAX_ACCOUNT_CHARS} characters (SS58 or 0x-hex); got ${account.length}`,
      true,
    );
  }
  try {
    decodeAddress(account);
  } catch {
    throw new FrameFault('E_BAD_ACCOUNT', `not an SS58 address: ${JSON.stringify(account)}`, true);
  }
  conn.account = account;
  conn.challenge = {
    protocolVersion: PROTOCOL_VERSION,
    nonce: randomBytes(32),
    coordinator: ctx.options.coordinator,
    network: ctx.options.network,
  };
  conn.state = 'authenticating';
  ctx.send(conn, { kind: 'challenge', challenge: conn.challenge });
}

export async function authenticate(ctx: ServerContext, conn: Connection, frame: Authenticate): Promise<void> {
  if (conn.state !== 'authenticating')
    throw new FrameFault('E_UNEXPECTED_FRAME', 'authenticate before hello', true);
  const account = conn.account!;
  const { signature, endpoint } = frame;
  const endpoints = ctx.options.endpoints;
  if (endpoints !== undefined && endpoints.length > 0 && !endpoints.some((e) => sameUrl(e, endpoint))) {
    throw new FrameFault(
      'E_AUTH_REJECTED',
      `signed for endpoint ${JSON.stringify(endpoint)}; this coordinator serves ${endpoints.join(', ')}: dial it directly`,
      true,
    );
  }
  if (!SIGNATURE_LENGTHS.has(signature.length)) {
    throw new FrameFault(
      'E_AUTH_REJECTED',
      `a signature is 64 bytes (sr25519, ed25519) or 65 (ecdsa); got ${signature.length}`,
      true,
    );
  }
  // The worker has done its part within the time to authenticate: what follows is this coordinator's own work.
  conn.answered = true;
  // On a crypto thread: a thousand workers logging in at once would otherwise queue behind each other's checks.
  const valid = await ctx.crypto.verify(authMessage(conn.challenge!, account, endpoint), signature, account);
  if (!valid)
    throw new FrameFault('E_AUTH_REJECTED', `the signature does not prove control of ${account}`, true);
  const admitted = await ctx.options.hooks.admit(account);
  if (!admitted.ok) throw new FrameFault(admitted.code, admitted.message, true);
  if (conn.state !== 'authenticating') return; // closed (the worker left) while the engine decided
  const previous = ctx.byAccount.get(account);
  if (previous) {
    ctx.send(previous, {
      kind: 'error',
      error: {
        code: 'E_REPLACED',
        message: 'a newer connection of this account took over',
        refSeq: 0,
        fatal: true,
      },
    });
    ctx.closeConnection(previous, 1008, 'E_REPLACED');
  }
  conn.state = 'ready';
  ctx.byAccount.set(account, conn);
  ctx.authenticated(conn);
  ctx.send(conn, {
    kind: 'welcome',
    welcome: {
      session: conn.id,
      maxFrameBytes: ctx.limits.maxFrameBytes,
      maxUpdateBytes: ctx.limits.maxUpdateBytes,
      heartbeatMs: ctx.limits.heartbeatMs,
    },
  });
  ctx.logger.info({ conn: conn.id, account }, 'worker authenticated');
  ctx.options.hooks.connected?.(account);
}

/** Two spellings of one URL (a trailing slash, upper-case host) are one endpoint; the signed string is compared so. */
function sameUrl(a: string, b: string): boolean {
  const normal = (u: string) => {
    try {
      return new URL(u).href;
    } catch {
      return u;
    }
  };
  return normal(a) === normal(b);
}
