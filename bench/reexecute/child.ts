// A fresh process's run of the fixture task: prints the sha256 of each codec's payload as one JSON line.
// Usage: node --import tsx bench/reexecute/child.ts BACKEND STEPS
import { createHash } from 'node:crypto';
import type { BackendChoice } from '../../model/index.ts';
import { fixture, payloadsOf, runTask } from './fixture.ts';

const [backend, steps] = process.argv.slice(2);
const f = await fixture();
const r = await runTask(f, backend as BackendChoice, { steps: Number(steps), codec: { codec: 'dense' } });
const hashes = Object.fromEntries(
  payloadsOf(f, r).map(({ name, payload }) => [name, createHash('sha256').update(payload).digest('hex')]),
);
process.stdout.write(`${JSON.stringify({ backend: r.backend, hashes })}\n`);
process.exit(0);
