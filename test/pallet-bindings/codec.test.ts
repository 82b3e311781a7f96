// The payload codec: byte layout, round trips for every call, and coded rejection of anything else.
import { expect } from 'chai';
import fc from 'fast-check';
import { u8aToHex } from '@polkadot/util';
import {
  CALL_TYPES,
  MAGIC,
  PROTOCOL_VERSION,
  decodePayload,
  deriveNetworkId,
  encodePayload,
  PalletError,
  toAccount,
  type Hex32,
} from '../../pallet-bindings/index.ts';
import { ALICE, arbCall, createCall, hex32 } from './fixtures.ts';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return (error as PalletError).code;
  }
  return undefined;
}

describe('pallet-bindings codec', () => {
  it('lays a payload out as magic, version, Option<network id>, call', () => {
    const net = hex32(0xab);
    const bytes = encodePayload({ network: net, call: { type: 'vote', proposal: 7, aye: true } });
    expect(u8aToHex(bytes)).to.equal(
      // "fdtn"    v1  Some  network id (32 bytes)                                           vote=6 u32 LE 7  aye
      `0x6664746e` + '01' + '01' + 'ab'.repeat(32) + '06' + '07000000' + '01',
    );
    expect(Array.from(bytes.subarray(0, 4))).to.deep.equal(Array.from(MAGIC));
    expect(bytes[4]).to.equal(PROTOCOL_VERSION);
    const create = encodePayload({ network: null, call: createCall() });
    expect(create[5]).to.equal(0, 'createNetwork carries None');
    expect(create[6]).to.equal(CALL_TYPES.indexOf('createNetwork'));
  });

  it('keeps text that looks like hex as text ("0x", "0x12"), which @polkadot/types would read as hex', () => {
    for (const text of ['0x', '0x12', '0xdeadbeef', '0xzz']) {
      const call = {
        type: 'registerDataset' as const,
        name: text,
        root: hex32(1),
        records: 1,
        shards: 1,
        bytes: 1,
        license: text,
        source: '',
        tokenizer: text,
        manifestUri: text,
      };
      const network = hex32(9);
      expect(decodePayload(encodePayload({ network, call }))).to.deep.equal({ network, call });
      const failed = { type: 'failRound' as const, proposal: 0, reason: text };
      expect(decodePayload(encodePayload({ network, call: failed })).call).to.deep.equal(failed);
      const worker = {
        type: 'registerWorker' as const,
        capabilities: { backend: text, device: text, memoryBytes: 0 },
        endpoint: text,
      };
      expect(decodePayload(encodePayload({ network, call: worker })).call).to.deep.equal(worker);
    }
  });

  it('keeps 32-byte fields whose bytes are printable ASCII as hex, which @polkadot/types would give as text', () => {
    const network = hex32(9);
    for (const byte of [0x20, 0x22, 0x41, 0x7e]) {
      const h = hex32(byte);
      const finalize = {
        type: 'finalizeRound' as const,
        proposal: 0,
        round: 0,
        checkpoint: { id: h, bytes: 1, uri: '' },
        updatesRoot: h,
        contributors: [],
        datasetShardsRoot: h,
        metrics: { trainLoss: 1, evalLoss: 1, extra: [] },
      };
      expect(decodePayload(encodePayload({ network, call: finalize })).call).to.deep.equal(finalize);
      const attest = { type: 'attest' as const, checkpoint: h, evalLoss: 1, verdict: true };
      expect(decodePayload(encodePayload({ network, call: attest })).call).to.deep.equal(attest);
    }
  });

  it('round-trips every call through its SCALE encoding (and the seed that found the hex-text bug)', () => {
    fc.assert(
      fc.property(arbCall, (call) => {
        const network = call.type === 'createNetwork' ? null : hex32(9);
        expect(decodePayload(encodePayload({ network, call }))).to.deep.equal({ network, call });
      }),
      { numRuns: 300, seed: 887435356 },
    );
  });

  it('round-trips every call through its SCALE encoding', () => {
    fc.assert(
      fc.property(arbCall, (call) => {
        const network = call.type === 'createNetwork' ? null : hex32(9);
        expect(decodePayload(encodePayload({ network, call }))).to.deep.equal({ network, call });
      }),
      { numRuns: 300 },
    );
  });

  it('refuses wrong magic, unknown versions, trailing bytes, non-canonical bytes and a missing network id', () => {
    const good = encodePayload({ network: hex32(1), call: { type: 'vote', proposal: 1, aye: false } });
    expect(codeOf(() => decodePayload(new Uint8Array([1, 2, 3, 4, 5, 6])))).to.equal('E_NOT_FEDTUNE');
    const v2 = good.slice();
    v2[4] = 2;
    expect(codeOf(() => decodePayload(v2))).to.equal('E_UNKNOWN_VERSION');
    expect(codeOf(() => decodePayload(new Uint8Array([...good, 0])))).to.equal('E_MALFORMED_PAYLOAD');
    const bool2 = good.slice();
    bool2[bool2.length - 1] = 2;
    expect(codeOf(() => decodePayload(bool2))).to.equal('E_MALFORMED_PAYLOAD');
    const unknownCall = good.slice();
    unknownCall[38] = CALL_TYPES.length;
    expect(codeOf(() => decodePayload(unknownCall))).to.equal('E_MALFORMED_PAYLOAD');
    const createWithNet = encodePayload({ network: null, call: createCall() });
    const spliced = new Uint8Array([
      ...createWithNet.subarray(0, 5),
      1,
      ...new Uint8Array(32),
      ...createWithNet.subarray(6),
    ]);
    expect(codeOf(() => decodePayload(spliced))).to.equal('E_MALFORMED_PAYLOAD');
    expect(codeOf(() => encodePayload({ network: null, call: { type: 'deregisterWorker' } }))).to.equal(
      'E_BAD_CALL',
    );
    expect(
      codeOf(() => encodePayload({ network: 'nope' as Hex32, call: { type: 'deregisterWorker' } })),
    ).to.equal('E_BAD_NETWORK_ID');
  });

  it('never throws anything but a PayloadError on arbitrary bytes behind the magic', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (tail, versioned) => {
        const bytes = new Uint8Array([...MAGIC, ...(versioned ? [PROTOCOL_VERSION] : []), ...tail]);
        try {
          decodePayload(bytes);
        } catch (error) {
          expect(error).to.be.instanceOf(PalletError);
          expect((error as PalletError).code).to.match(/^E_(MALFORMED_PAYLOAD|UNKNOWN_VERSION)$/);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('derives network ids from block hash, extrinsic index and call position', () => {
    const h = `0x${'12'.repeat(32)}`;
    const id = deriveNetworkId(h, 3, 0);
    expect(id).to.match(/^0x[0-9a-f]{64}$/);
    expect(deriveNetworkId(h, 3, 0)).to.equal(id);
    expect(deriveNetworkId(h, 3, 1)).to.not.equal(id);
    expect(deriveNetworkId(h, 4, 0)).to.not.equal(id);
    expect(deriveNetworkId(`0x${'13'.repeat(32)}`, 3, 0)).to.not.equal(id);
  });

  it('canonicalises accounts to SS58 prefix 42 and refuses junk with E_BAD_ACCOUNT', () => {
    // Alice with the Polkadot prefix 0.
    expect(toAccount('15oF4uVJwmo4TdGW7VfQxNLavjCXviqxT9S1MgbjMNHr6Sp5')).to.equal(ALICE);
    expect(codeOf(() => toAccount('not-an-address'))).to.equal('E_BAD_ACCOUNT');
  });
});
