// Re-executing a published contribution for `fedtune round verify`: the worker's task rebuilt from public values, its
// shards checked against the dataset root, trained again with the task's seed, encoded with the task's codec, and
// compared with the update the worker published.
import { createTopKState, decodeUpdate, encodeUpdate, type CodecName } from '../aggregation/index.ts';
import { readSafetensors, type NamedTensors } from '../model/index.ts';
import { taskFrame, type ReexecuteInput } from '../verify/index.ts';
import pino from 'pino';
import { parseTask, trainTask, verifiedShardRecords } from './task.ts';

/** Relative L2 distance above which a re-executed update is not the published one. */
export const WORK_TOLERANCE = 1e-3;

export async function reexecuteContribution(
  input: ReexecuteInput,
): Promise<{ ok: boolean; distance: number; threshold: number; detail?: string }> {
  const { update } = input;
  const task = taskFrame({
    task: { account: update.account, taskId: update.taskId, shards: update.shards },
    proposal: 0,
    round: 0,
    base: { id: '0x', bytes: input.baseBytes.length, url: '' },
    datasetRoot: input.datasetRoot,
    modelJson: JSON.stringify(input.config),
    fit: input.fit,
    updateEncoding: input.encoding,
    deadlineMs: 0,
  });
  task.hyperparamsJson = JSON.stringify(input.fit);
  const parsed = parseTask(task);
  const records = verifiedShardRecords(input.dataset, input.manifest, input.datasetRoot, update.shards);
  const result = await trainTask({
    parsed,
    baseCheckpoint: input.baseBytes,
    records,
    labels: input.manifest.labels,
    logger: pino({ level: 'silent' }),
  });
  const delta = deltaOf(result.update, result.updateKind, input.baseBytes);
  const codec = input.encoding.codec as CodecName;
  const payload = encodeUpdate(delta, { ...input.encoding, codec, state: createTopKState() });
  const same = payload.length === input.payload.length && payload.every((b, i) => b === input.payload[i]);
  if (same) return { ok: true, distance: 0, threshold: WORK_TOLERANCE };
  const a = decodeUpdate(input.payload, { codec, maxValues: Number.MAX_SAFE_INTEGER });
  const b = decodeUpdate(payload, { codec, maxValues: Number.MAX_SAFE_INTEGER });
  const distance = relativeDistance(a, b);
  return { ok: distance <= WORK_TOLERANCE, distance, threshold: WORK_TOLERANCE };
}

function deltaOf(update: NamedTensors, kind: 'delta' | 'values', base: Uint8Array): NamedTensors {
  if (kind === 'delta') return update;
  const baseTensors = new Map(readSafetensors(base).tensors.map((t) => [t.name, t.data]));
  return update.map((t) => {
    const b = baseTensors.get(t.name)!;
    const data = new Float32Array(t.data.length);
    for (let i = 0; i < data.length; i++) data[i] = t.data[i]! - b[i]!;
    return { name: t.name, shape: t.shape, data };
  });
}

/** ‖a − b‖ / ‖b‖ over tensors matched by name (a tensor only one side has counts whole). */
function relativeDistance(a: NamedTensors, b: NamedTensors): number {
  const bm = new Map(b.map((t) => [t.name, t.data]));
  let diff = 0;
  let norm = 0;
  for (const t of a) {
    const other = bm.get(t.name);
    for (let i = 0; i < t.data.length; i++) {
      const y = other?.[i] ?? 0;
      diff += (t.data[i]! - y) ** 2;
    }
  }
  for (const t of b) for (const v of t.data) norm += v * v;
  return Math.sqrt(diff) / Math.max(Math.sqrt(norm), 1e-30);
}
