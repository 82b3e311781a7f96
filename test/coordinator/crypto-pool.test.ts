// The crypto pool answers as the inline checks do, on threads: signatures verify or not, payloads hash and come back.
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { pino } from 'pino';
import {
  HASH_OFFLOAD_BYTES,
  startCryptoPool,
  type CryptoPool,
} from '../../coordinator/server/crypto-pool.ts';
import { signerFromSeed } from '../../pallet-bindings/index.ts';
import { Keyring } from '@polkadot/keyring';
import { u8aWrapBytes } from '@polkadot/util';

const logger = pino({ level: 'silent' });

async function started(pool: CryptoPool, want: number): Promise<void> {
  for (let i = 0; i < 300 && pool.threads < want; i++) await sleep(50);
  expect(pool.threads, 'crypto threads started').to.equal(want);
}

describe('coordinator: crypto pool', () => {
  for (const threads of [2, 0]) {
    it(`verifies signatures and hashes payloads ${threads ? `on ${threads} threads` : 'inline'}`, async () => {
      const pool = startCryptoPool({ threads, logger });
      try {
        await started(pool, threads);
        const pair = await signerFromSeed('//crypto-pool');
        const other = await signerFromSeed('//crypto-pool-other');
        const message = new Uint8Array(32).fill(5);
        const signature = pair.sign(message);
        const verdicts = await Promise.all([
          pool.verify(message, signature, pair.address),
          pool.verify(new Uint8Array(32).fill(6), signature, pair.address),
          pool.verify(message, signature, other.address),
          pool.verify(message, new Uint8Array(10), pair.address),
          pool.verify(message, signature, 'not an address'),
        ]);
        expect(verdicts).to.deep.equal([true, false, false, false, false]);
        // What the WebAssembly sr25519 check does not accept still goes to signatureVerify: ed25519 keys, a message the
        // signer wrapped in <Bytes>, and a forged 64 bytes is still refused.
        const ed = new Keyring({ type: 'ed25519' }).addFromUri('//crypto-pool-ed');
        const wrapped = u8aWrapBytes(message);
        const forged = signature.slice();
        forged[40] = forged[40]! ^ 1;
        expect(
          await Promise.all([
            pool.verify(message, ed.sign(message), ed.address),
            pool.verify(message, pair.sign(wrapped), pair.address),
            pool.verify(message, forged, pair.address),
            pool.verify(message, ed.sign(message), pair.address),
          ]),
        ).to.deep.equal([true, true, false, false]);

        for (const n of [1000, HASH_OFFLOAD_BYTES, 3_000_000]) {
          const bytes = new Uint8Array(n);
          for (let i = 0; i < n; i++) bytes[i] = (i * 31) & 0xff;
          const want = createHash('sha256').update(bytes).digest();
          const copy = Buffer.from(bytes);
          const got = await pool.sha256(bytes);
          expect(Buffer.from(got.digest).equals(want), `sha256 of ${n} bytes`).to.equal(true);
          // The payload comes back whole (lent to a thread, or never moved).
          expect(Buffer.from(got.bytes).equals(copy)).to.equal(true);
        }
        // A view into a larger buffer is hashed where it is (it cannot be lent without lending the rest).
        const backing = new Uint8Array(HASH_OFFLOAD_BYTES * 2).fill(3);
        const view = backing.subarray(7, 7 + HASH_OFFLOAD_BYTES);
        const got = await pool.sha256(view);
        expect(Buffer.from(got.digest).equals(createHash('sha256').update(view).digest())).to.equal(true);
        expect(got.bytes).to.equal(view);
      } finally {
        await pool.close();
      }
    });
  }
});
