// Provenance: the Merkle encoding, record and shard proofs, flipped bytes caught, verifyShard's coded refusals.
import { createHash } from 'node:crypto';
import { expect } from 'chai';
import {
  buildManifest,
  evalProof,
  evalRecords,
  manifestRoot,
  recordProof,
  registerDatasetFields,
  shardDataset,
  shardProof,
  shardRecords,
  verifyManifest,
  verifyRecord,
  verifyShard,
  type DatasetManifest,
  type DatasetRecord,
} from '../../datasets/index.ts';
import {
  isHex32,
  leafHash,
  merkleLevels,
  merkleProof,
  merkleRoot,
  toHex,
  verifyProof,
} from '../../pallet-bindings/index.ts';
import { corpus, expectCode } from './corpora.ts';

const sha = (...parts: Uint8Array[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};

/** The record with one bit of one UTF-8 byte flipped (the text may decode with replacement characters). */
function flipped(r: DatasetRecord, at: number): DatasetRecord {
  const bytes = Buffer.from(r.text, 'utf8');
  bytes[at % bytes.length]! ^= 0x01;
  const text = bytes.toString('utf8');
  expect(text).to.not.equal(r.text);
  return { ...r, text };
}

describe('datasets/merkle', () => {
  it('hashes leaves as SHA-256(0x00 || data) and nodes as SHA-256(0x01 || left || right), promoting an odd node', () => {
    const data = [1, 2, 3].map((i) => Uint8Array.of(i));
    const [a, b, c] = data.map((d) => sha(Uint8Array.of(0), d));
    expect(toHex(leafHash(data[0]!))).to.equal(toHex(a!));
    const ab = sha(Uint8Array.of(1), a!, b!);
    expect(toHex(merkleRoot([a!, b!]))).to.equal(toHex(ab));
    expect(toHex(merkleRoot([a!, b!, c!]))).to.equal(toHex(sha(Uint8Array.of(1), ab, c!)));
    expect(toHex(merkleRoot([a!]))).to.equal(toHex(a!));
  });

  it('proves every leaf of trees of 1..33 leaves, and no proof verifies a wrong leaf', () => {
    for (let n = 1; n <= 33; n++) {
      const leaves = Array.from({ length: n }, (_, i) => leafHash(Uint8Array.of(i, n)));
      const levels = merkleLevels(leaves);
      const root = toHex(levels[levels.length - 1]![0]!);
      for (let i = 0; i < n; i++) {
        const proof = merkleProof(levels, i);
        expect(verifyProof(root, leaves[i]!, proof)).to.equal(true);
        expect(verifyProof(root, leaves[(i + 1) % n]!, proof)).to.equal(n === 1 ? true : false);
        if (proof.siblings.length > 0) {
          expect(verifyProof(root, leaves[i]!, { ...proof, siblings: proof.siblings.slice(1) })).to.equal(
            false,
          );
        }
      }
    }
  });
});

describe('datasets/manifest', () => {
  let sotu: DatasetManifest;
  before(() => {
    const ds = corpus('sotu');
    sotu = buildManifest(ds, shardDataset(ds, { scheme: 'partition', seed: 1 }));
  });

  it('gives a 32-byte hex root that survives a JSON round trip and changes with any record', () => {
    const ds = corpus('sotu');
    expect(isHex32(sotu.root)).to.equal(true);
    const again = JSON.parse(JSON.stringify(sotu)) as DatasetManifest;
    expect(manifestRoot(again)).to.equal(sotu.root);
    expect(buildManifest(ds, shardDataset(ds, { scheme: 'partition', seed: 1 })).root).to.equal(sotu.root);
    const edited = { ...ds, records: ds.records.map((r, i) => (i === 100 ? flipped(r, 500) : r)) };
    expect(buildManifest(edited, shardDataset(edited, { scheme: 'partition', seed: 1 })).root).to.not.equal(
      sotu.root,
    );
    expect(buildManifest(ds, shardDataset(ds, { scheme: 'partition', seed: 2 })).root).to.not.equal(
      sotu.root,
    );
  });

  it('binds licence, source, tokenizer, labels and sharding into the root', () => {
    const tamper = (edit: (m: DatasetManifest) => void) => {
      const m = structuredClone(sotu);
      edit(m);
      expectCode(() => verifyManifest(m, sotu.root), 'E_MANIFEST_ROOT_MISMATCH');
    };
    tamper((m) => (m.license = 'MIT'));
    tamper((m) => (m.source = 'elsewhere'));
    tamper((m) => (m.tokenizer = 'bpe'));
    tamper((m) => (m.sharding.seed = 5));
    tamper((m) => (m.labels = ['x']));
    tamper((m) => (m.records[3]!.hash = m.records[4]!.hash));
    tamper((m) => m.shards[0]!.records.push(m.eval.records[0]!));
    tamper((m) => m.eval.records.pop());
    verifyManifest(structuredClone(sotu), sotu.root);
  });

  it('proves every SOTU record, and a flipped byte breaks its proof', () => {
    const ds = corpus('sotu');
    ds.records.forEach((r, i) => {
      const proof = recordProof(sotu, i);
      expect(verifyRecord(sotu.root, proof, r)).to.equal(true);
      expect(verifyRecord(sotu.root, proof, flipped(r, i * 7919))).to.equal(false);
      expect(verifyRecord(sotu.root, proof, { ...r, id: `${r.id}x` })).to.equal(false);
    });
  });

  it('catches a flipped byte anywhere in sampled SpamAssassin records, label flips too', () => {
    const ds = corpus('spam-assassin');
    const m = buildManifest(ds, shardDataset(ds, { scheme: 'dirichlet', shards: 5, alpha: 1, seed: 3 }));
    for (let k = 0; k < 60; k++) {
      const i = (k * 104729) % ds.records.length;
      const r = ds.records[i]!;
      const proof = recordProof(m, i);
      expect(verifyRecord(m.root, proof, r)).to.equal(true);
      for (const at of [0, k * 31, Buffer.byteLength(r.text) - 1]) {
        expect(verifyRecord(m.root, proof, flipped(r, at))).to.equal(false);
      }
      expect(verifyRecord(m.root, proof, { ...r, label: r.label === 'spam' ? 'ham' : 'spam' })).to.equal(
        false,
      );
    }
  });

  it('verifyShard accepts each shard and the eval split with their records', () => {
    const ds = corpus('sotu');
    for (let s = 0; s < sotu.shards.length; s++)
      verifyShard(sotu.root, shardProof(sotu, s), shardRecords(ds, sotu, s));
    verifyShard(sotu.root, evalProof(sotu), evalRecords(ds, sotu));
  });

  it('verifyShard refuses with E_SHARD_MISMATCH naming the shard and record', () => {
    const ds = corpus('sotu');
    const s = 5;
    const proof = shardProof(sotu, s);
    const records = shardRecords(ds, sotu, s);
    const bad = records.map((r, i) => (i === 1 ? flipped(r, 1234) : r));
    const e = expectCode(() => verifyShard(sotu.root, proof, bad), 'E_SHARD_MISMATCH');
    expect(e.message).to.contain(`shard ${s}`).and.contain(records[1]!.id);
    expect(e.details).to.deep.include({ shard: s, record: sotu.shards[s]!.records[1], position: 1 });
    // A missing record, another shard's records, a wrong root, a tampered proof.
    expectCode(() => verifyShard(sotu.root, proof, records.slice(1)), 'E_SHARD_MISMATCH');
    expectCode(() => verifyShard(sotu.root, proof, shardRecords(ds, sotu, s + 1)), 'E_SHARD_MISMATCH');
    expectCode(() => verifyShard(`0x${'ab'.repeat(32)}`, proof, records), 'E_SHARD_MISMATCH');
    const forged = {
      ...proof,
      records: proof.records.map((x, i) => (i === 0 ? { ...x, hash: proof.records[1]!.hash } : x)),
    };
    expectCode(() => verifyShard(sotu.root, forged, records), 'E_SHARD_MISMATCH');
    expectCode(() => verifyShard(sotu.root, { ...proof, shard: s + 1 }, records), 'E_SHARD_MISMATCH');
    expectCode(() => verifyShard(sotu.root, { ...proof, siblings: ['0x12'] }, records), 'E_SHARD_MISMATCH');
  });

  it('gives exactly the registerDataset fields', () => {
    const fields = registerDatasetFields(sotu, 'https://example.org/sotu.json');
    expect(Object.keys(fields).sort()).to.deep.equal(
      ['bytes', 'license', 'manifestUri', 'name', 'records', 'root', 'shards', 'source', 'tokenizer'].sort(),
    );
    expect(fields).to.deep.include({
      name: 'sotu',
      root: sotu.root,
      records: 233,
      shards: sotu.shards.length,
      bytes: corpus('sotu').records.reduce((a, r) => a + Buffer.byteLength(r.text), 0),
      tokenizer: 'fedtune-byte-v1',
      license: 'Apache-2.0',
    });
    expect(fields.root).to.match(/^0x[0-9a-f]{64}$/);
  });
});
