// The crypto pool's thread: verifies signatures (sr25519 in WebAssembly, else util-crypto's JavaScript, milliseconds
// each) and hashes large payloads, so neither holds up the coordinator's event loop. Answers each job with its id.
// Plain JavaScript, so that the same file runs as a thread under tsx and from dist/ (a thread does not inherit tsx's
// loader); the messages are typed in crypto-pool.ts (CryptoJob, CryptoResult).
import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { cryptoWaitReady, decodeAddress, signatureVerify } from '@polkadot/util-crypto';
import { sr25519Verify, waitReady } from '@polkadot/wasm-crypto';

await Promise.all([cryptoWaitReady(), waitReady()]);
const port = parentPort;

/** True only for a valid sr25519 signature; false for anything else, including what it cannot parse. */
function sr25519Fast(job) {
  try {
    return (
      job.signature.length === 64 && sr25519Verify(job.signature, job.message, decodeAddress(job.account))
    );
  } catch {
    return false;
  }
}

port.on('message', (job) => {
  if (job.kind === 'verify') {
    let valid;
    try {
      // sr25519 in WebAssembly first (~15x faster than util-crypto's JavaScript); anything it does not accept goes on to
      // signatureVerify (ed25519, ecdsa, wrapped messages), so the verdict is signatureVerify's (verifyInline, crypto-pool.ts).
      valid = sr25519Fast(job) || signatureVerify(job.message, job.signature, job.account).isValid;
    } catch {
      valid = false; // a signature the verifier cannot even parse proves nothing
    }
    port.postMessage({ id: job.id, kind: 'verify', valid });
  } else {
    const bytes = new Uint8Array(job.buffer, job.byteOffset, job.byteLength);
    const digest = new Uint8Array(createHash('sha256').update(bytes).digest());
    // The payload goes back with its digest: the pool lent it, zero-copy, and the caller still owns it.
    port.postMessage({ id: job.id, kind: 'sha256', digest, buffer: job.buffer }, [job.buffer]);
  }
});
port.postMessage({ kind: 'ready' });
