// bench scale's simulated workers: COUNT real worker connections in one process (chain keys //bench-scale-FROM…,
// real signatures, real top-k encodings of the bench model), each uploading as soon as its task arrives. Reports
// JSON lines: 'connected' once every connection is authenticated, 'done' with the bytes sent once every upload is
// acknowledged. Stops on SIGTERM.
// node --import tsx bench/scale/workers.ts COORDINATOR_URL FROM COUNT
import { pino } from 'pino';
import { encodeUpdate } from '../../aggregation/index.ts';
import { paramSpecs } from '../../model/index.ts';
import { signerFromSeed } from '../../pallet-bindings/index.ts';
import { connectWorker, type WorkerConnection } from '../../worker/index.ts';
import { SCALE_MODEL } from './model.ts';

const [url, fromArg, countArg] = process.argv.slice(2) as [string, string, string];
const from = Number(fromArg);
const count = Number(countArg);
const logger = pino({ level: 'silent' });
/** Connections opened at once by this process. */
const WAVE = Number(process.env.FEDTUNE_BENCH_SCALE_WAVE) || 50;
const line = (value: object) => process.stdout.write(`${JSON.stringify({ at: Date.now(), ...value })}\n`);

// Distinct top-k updates, encoded before the round: a worker would have trained meanwhile, and encoding a thousand
// here would be the bench's own CPU, not the coordinator's. Workers take them in turn.
const specs = paramSpecs(SCALE_MODEL);
const payloads = Array.from({ length: 8 }, (_, v) => {
  let s = (from + v) * 2654435761 || 1;
  const tensors = specs.map((p) => {
    const data = new Float32Array(p.shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      data[i] = (s / 2 ** 32 - 0.5) * 2e-3;
    }
    return { name: p.name, shape: p.shape, data };
  });
  return encodeUpdate(tensors, { codec: 'topk', fraction: 0.01 });
});

const pairs = await Promise.all(
  Array.from({ length: count }, (_, i) => signerFromSeed(`//bench-scale-${from + i}`)),
);
let acked = 0;
let bytes = 0;
const failures: string[] = [];
const open = (pair: (typeof pairs)[number], i: number): WorkerConnection => {
  const conn: WorkerConnection = connectWorker({
    url,
    signer: pair,
    logger,
    onTask: (task) => {
      const payload = payloads[i % payloads.length]!;
      conn
        .upload({
          taskId: task.taskId,
          proposal: task.proposal,
          round: task.round,
          base: task.base.id,
          codec: (JSON.parse(task.codecJson) as { codec: string }).codec,
          payload,
          samples: 1, // the proposal's local steps × batch size
          shards: task.shards,
          trainLoss: 5,
          deadlineMs: task.deadlineMs,
        })
        .then(
          () => {
            bytes += payload.length;
            if (++acked === count) line({ type: 'done', acked, bytes });
          },
          (error: Error) => {
            failures.push(error.message);
            line({ type: 'failed', message: error.message });
          },
        );
    },
  });
  return conn;
};
// Workers log in a wave at a time, each wave once the one before is in: a thousand sockets at one instant would all
// queue their login checks behind each other, past the coordinator's authentication timeout, and come back after
// backoffs (see docs/rounds.md). Real workers join over seconds, not in one tick.
const workers: WorkerConnection[] = [];
for (let i = 0; i < count; i += WAVE) {
  const wave = pairs.slice(i, i + WAVE).map((pair, j) => open(pair, i + j));
  workers.push(...wave);
  await Promise.all(wave.map((w) => w.ready));
  line({ type: 'wave', ready: workers.length });
}
line({ type: 'connected', count });

process.on('SIGTERM', () => {
  void Promise.all(workers.map((w) => w.close())).then(() => process.exit(0));
});
