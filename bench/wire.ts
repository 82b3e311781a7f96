// Wire codec throughput: a 40 MB update cut into frames, encoded and decoded, beside a memory copy in the same process.
import { decodeFrame, encodeFrame, DEFAULT_MAX_FRAME_BYTES } from '../proto/index.ts';
import type { Bench } from './lib.ts';
import { memcpyGBs, timeIt, withRatio } from './lib.ts';

const bench: Bench = async (ctx) => {
  const updateBytes = 40 * 1000 * 1000;
  const payload = new Uint8Array(updateBytes);
  for (let i = 0; i < payload.length; i += 4096) payload[i] = i & 0xff;
  const chunk = DEFAULT_MAX_FRAME_BYTES - 4096;
  const ref = await memcpyGBs(updateBytes);
  ctx.report({ name: 'memory copy', value: ref, unit: 'GB/s', note: 'reference: Float32Array.set of 40 MB' });

  const frames: Uint8Array[] = [];
  const encodeSeconds = await timeIt(
    () => {
      frames.length = 0;
      for (let offset = 0; offset < updateBytes; offset += chunk) {
        const body = payload.subarray(offset, Math.min(offset + chunk, updateBytes));
        frames.push(
          encodeFrame(
            { seq: frames.length, kind: 'updateChunk', updateChunk: { taskId: 'bench', offset } },
            body,
          ),
        );
      }
    },
    { minMs: ctx.quick ? 200 : 1000 },
  );
  let received = 0;
  const decodeSeconds = await timeIt(
    () => {
      received = 0;
      for (const frame of frames) received += decodeFrame(frame).body.length;
    },
    { minMs: ctx.quick ? 200 : 1000 },
  );
  if (received !== updateBytes) throw new Error(`decoded ${received} bytes of ${updateBytes}`);
  const note = `${frames.length} frames of up to ${chunk} bytes`;
  ctx.report(
    withRatio(
      { name: 'encode 40 MB update', value: updateBytes / encodeSeconds / 1e9, unit: 'GB/s', note },
      ref,
    ),
  );
  ctx.report(
    withRatio(
      {
        name: 'decode 40 MB update (zero-copy body)',
        value: updateBytes / decodeSeconds / 1e9,
        unit: 'GB/s',
        note,
      },
      ref,
    ),
  );
  ctx.report(
    withRatio(
      {
        name: 'encode + decode 40 MB update',
        value: updateBytes / (encodeSeconds + decodeSeconds) / 1e9,
        unit: 'GB/s',
        note,
      },
      ref,
    ),
  );
};

export default bench;
