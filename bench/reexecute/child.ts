// A fresh process's run of the fixture task: prints, as one JSON line, the sha256 of each codec's payload and the
// dense payload itself (base64). Usage: node --import tsx bench/reexecute/child.ts BACKEND STEPS, where BACKEND may
// also be wasm-nosimd (the wasm build without SIMD, which hosts without wasm SIMD load).
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { createHash } from 'node:crypto';
import type { BackendChoice } from '../../model/index.ts';
import { fixture, payloadsOf, runTask } from './fixture.ts';

const [arg, steps] = process.argv.slice(2);
if (arg === 'wasm-nosimd') tf.env().set('WASM_HAS_SIMD_SUPPORT', false);
const backend = (arg === 'wasm-nosimd' ? 'wasm' : arg) as BackendChoice;
const f = await fixture();
const r = await runTask(f, backend, { steps: Number(steps), codec: { codec: 'dense' } });
const payloads = payloadsOf(f, r);
const hashes = Object.fromEntries(
  payloads.map(({ name, payload }) => [name, createHash('sha256').update(payload).digest('hex')]),
);
const dense = Buffer.from(payloads[0]!.payload).toString('base64');
process.stdout.write(`${JSON.stringify({ flavour: r.flavour, hashes, dense })}\n`);
process.exit(0);
