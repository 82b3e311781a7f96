// The upload frames (UpdateBegin, UpdateChunk, UpdateEnd): the begun upload must match the worker's task and carry a
// signature bound to network and coordinator; chunks land in a buffer sized at begin; the engine decides at the end.
import { updateMessage, type UpdateBegin, type UpdateChunk, type UpdateEnd } from '../../proto/index.ts';
import { SIGNATURE_LENGTHS } from './auth.ts';
import { FrameFault, type Connection, type ServerContext } from './types.ts';

/** Bytes held by partial uploads; those whose task is over (the round moved on) are dropped first. */
function pendingBytes(ctx: ServerContext): number {
  let total = 0;
  for (const [key, upload] of ctx.uploads) {
    const account = key.slice(0, key.indexOf('|'));
    if (ctx.options.hooks.expectedUpload(account, upload.begin.taskId) === null) ctx.uploads.delete(key);
    else total += upload.begin.payloadBytes;
  }
  return total;
}

/** Checked on a crypto thread (sr25519 verification is milliseconds of JavaScript). */
async function signedByWorker(ctx: ServerContext, begin: UpdateBegin, account: string): Promise<boolean> {
  if (!SIGNATURE_LENGTHS.has(begin.signature.length)) return false;
  const { network, coordinator } = ctx.options;
  return ctx.crypto.verify(updateMessage({ ...begin, network, coordinator }), begin.signature, account);
}

export async function updateBegin(
  ctx: ServerContext,
  conn: Connection,
  account: string,
  begin: UpdateBegin,
): Promise<void> {
  const { limits, uploads, options } = ctx;
  const key = `${account}|${begin.taskId}`;
  const expected = options.hooks.expectedUpload(account, begin.taskId);
  if (expected === null)
    throw new FrameFault('E_UNKNOWN_TASK', `no open task ${JSON.stringify(begin.taskId)} for ${account}`);
  if (expected === 'busy')
    throw new FrameFault(
      'E_BUSY',
      `task ${JSON.stringify(begin.taskId)}'s round is being rebuilt; begin again shortly`,
    );
  if (begin.proposal !== expected.proposal || begin.round !== expected.round) {
    throw new FrameFault(
      'E_WRONG_ROUND',
      `update for proposal ${begin.proposal} round ${begin.round}; the task is proposal ${expected.proposal} round ${expected.round}`,
    );
  }
  if (begin.base !== expected.base)
    throw new FrameFault(
      'E_WRONG_BASE',
      `update relative to ${begin.base}; the round's base is ${expected.base}`,
    );
  if (begin.codec !== expected.codec)
    throw new FrameFault(
      'E_WRONG_CODEC',
      `update encoded as ${begin.codec}; the round asks for ${expected.codec}`,
    );
  if (begin.payloadBytes > limits.maxUpdateBytes) {
    throw new FrameFault(
      'E_UPDATE_TOO_LARGE',
      `update of ${begin.payloadBytes} bytes exceeds the limit of ${limits.maxUpdateBytes}`,
    );
  }
  if (begin.payloadSha256.length !== 32) throw new FrameFault('E_BAD_HASH', 'payloadSha256 must be 32 bytes');
  if (!(await signedByWorker(ctx, begin, account))) {
    throw new FrameFault(
      'E_BAD_SIGNATURE',
      `the update's signature does not verify for ${account} on network ${options.network} and coordinator ${options.coordinator}`,
    );
  }
  const receipt = options.hooks.receiptFor?.(account, begin.taskId, begin.payloadSha256);
  if (receipt) {
    ctx.send(conn, {
      kind: 'ack',
      ack: { taskId: begin.taskId, updateHash: receipt, proposal: begin.proposal, round: begin.round },
    });
    return;
  }
  const existing = uploads.get(key);
  const resumable =
    existing !== undefined &&
    existing.begin.payloadBytes === begin.payloadBytes &&
    Buffer.from(existing.begin.payloadSha256).equals(Buffer.from(begin.payloadSha256));
  if (!resumable) {
    uploads.delete(key);
    if (pendingBytes(ctx) + begin.payloadBytes > limits.maxPendingUploadBytes) {
      throw new FrameFault(
        'E_BUSY',
        `the coordinator holds ${limits.maxPendingUploadBytes} bytes of uploads already; retry shortly`,
      );
    }
    uploads.set(key, { begin, buffer: new Uint8Array(begin.payloadBytes), received: 0 });
  }
  ctx.send(conn, {
    kind: 'uploadStatus',
    uploadStatus: { taskId: begin.taskId, receivedBytes: uploads.get(key)!.received },
  });
}

export function updateChunk(
  ctx: ServerContext,
  conn: Connection,
  account: string,
  chunk: UpdateChunk,
  body: Uint8Array,
): void {
  const { taskId, offset } = chunk;
  const upload = ctx.uploads.get(`${account}|${taskId}`);
  if (!upload) throw new FrameFault('E_NO_UPLOAD', `no upload begun for task ${JSON.stringify(taskId)}`);
  if (offset !== upload.received) {
    ctx.send(conn, { kind: 'uploadStatus', uploadStatus: { taskId, receivedBytes: upload.received } });
    throw new FrameFault('E_BAD_OFFSET', `chunk at offset ${offset}; expected ${upload.received}`);
  }
  if (body.length > upload.begin.payloadBytes - upload.received) {
    ctx.uploads.delete(`${account}|${taskId}`);
    throw new FrameFault(
      'E_UPDATE_TOO_LARGE',
      `chunk overruns the declared ${upload.begin.payloadBytes} bytes`,
    );
  }
  upload.buffer.set(body, upload.received);
  upload.received += body.length;
  ctx.metrics.inc('fedtune_update_bytes_received_total', 'Update payload bytes received', {}, body.length);
}

export async function updateEnd(
  ctx: ServerContext,
  conn: Connection,
  account: string,
  end: UpdateEnd,
): Promise<void> {
  const { taskId } = end;
  const key = `${account}|${taskId}`;
  const upload = ctx.uploads.get(key);
  if (!upload) throw new FrameFault('E_NO_UPLOAD', `no upload begun for task ${JSON.stringify(taskId)}`);
  if (upload.received !== upload.begin.payloadBytes) {
    ctx.send(conn, { kind: 'uploadStatus', uploadStatus: { taskId, receivedBytes: upload.received } });
    throw new FrameFault(
      'E_INCOMPLETE_UPDATE',
      `received ${upload.received} of ${upload.begin.payloadBytes} bytes`,
    );
  }
  ctx.uploads.delete(key);
  // A large payload is hashed on a crypto thread, lent there without a copy and handed back.
  const { digest, bytes: payload } = await ctx.crypto.sha256(upload.buffer);
  if (!Buffer.from(digest).equals(Buffer.from(upload.begin.payloadSha256))) {
    throw new FrameFault('E_PAYLOAD_HASH', 'the payload does not hash to the signed payloadSha256');
  }
  const verdict = await ctx.options.hooks.acceptUpdate({ account, begin: upload.begin, payload });
  if (!verdict.ok) {
    ctx.metrics.inc('fedtune_updates_total', 'Updates by outcome', {
      outcome: 'rejected',
      code: verdict.code,
    });
    throw new FrameFault(verdict.code, verdict.message);
  }
  ctx.metrics.inc('fedtune_updates_total', 'Updates by outcome', { outcome: 'accepted', code: '' });
  ctx.send(conn, {
    kind: 'ack',
    ack: {
      taskId,
      updateHash: verdict.updateHash,
      proposal: upload.begin.proposal,
      round: upload.begin.round,
    },
  });
}
