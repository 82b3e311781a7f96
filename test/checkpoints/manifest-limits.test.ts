// A checkpoint manifest cannot name a chunk size a downloader could not hold: the size is bounded on build and parse.
import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { MAX_CHUNK_SIZE, buildManifest, encodeManifest, parseManifest } from '../../checkpoints/index.ts';

const idOf = (bytes: Uint8Array) => `0x${createHash('sha256').update(bytes).digest('hex')}`;

describe('checkpoints: manifest chunk size bounds', () => {
  it('refuses a manifest whose one chunk would be a terabyte, and accepts the largest allowed size', () => {
    const base = buildManifest(new Uint8Array(4096), { model: {} });
    const huge = { ...base, size: 2 ** 40, chunkSize: 2 ** 40, chunks: [base.chunks[0]!] };
    const bytes = encodeManifest(huge);
    expect(() => parseManifest(bytes, idOf(bytes)))
      .to.throw()
      .with.property('code', 'E_MANIFEST_INVALID');
    const largest = { ...base, size: MAX_CHUNK_SIZE, chunkSize: MAX_CHUNK_SIZE, chunks: [base.chunks[0]!] };
    const ok = encodeManifest(largest);
    expect(parseManifest(ok, idOf(ok)).chunkSize).to.equal(MAX_CHUNK_SIZE);
    expect(() => buildManifest(new Uint8Array(10), { model: {}, chunkSize: MAX_CHUNK_SIZE + 1 }))
      .to.throw()
      .with.property('code', 'E_MANIFEST_INVALID');
  });
});
