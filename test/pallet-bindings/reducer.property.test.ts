// Properties of the reducer over random call sequences: replay equals snapshot-and-resume, nothing throws, inputs stay untouched.
import { expect } from 'chai';
import fc from 'fast-check';
import {
  MAGIC,
  PROTOCOL_VERSION,
  decodeSnapshot,
  encodeSnapshot,
  initialState,
  reduceBlock,
  reduceBlocks,
  type ChainBlock,
  type ChainCall,
  type ChainExtrinsic,
  type Hex32,
} from '../../pallet-bindings/index.ts';
import {
  ACCOUNTS,
  ALICE,
  arbCall,
  block,
  call,
  callsBlock,
  createCall,
  datasetCall,
  hex32,
  networkAt,
} from './fixtures.ts';

const NET = networkAt(1);

/** A leaf: mostly well-formed calls to our network, sometimes to another, sometimes garbage behind the magic. */
const arbLeaf: fc.Arbitrary<ChainCall> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc
      .tuple(arbCall, fc.boolean())
      .map(([c, ok]) => call(c.type === 'createNetwork' ? null : NET, c, ok)),
  },
  {
    weight: 1,
    arbitrary: arbCall.filter((c) => c.type !== 'createNetwork').map((c) => call(hex32(0x42) as Hex32, c)),
  },
  {
    weight: 1,
    arbitrary: fc.uint8Array({ maxLength: 40 }).map((tail): ChainCall => ({
      kind: 'remark',
      data: new Uint8Array([...MAGIC, PROTOCOL_VERSION, ...tail]),
      ok: true,
    })),
  },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom(...ACCOUNTS)
      .map((dest): ChainCall => ({ kind: 'transfer', dest, value: '5', ok: true })),
  },
);

const arbTree: fc.Arbitrary<ChainCall> = fc.letrec<{ tree: ChainCall }>((tie) => ({
  tree: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    arbLeaf,
    fc.record({
      kind: fc.constant('batch' as const),
      mode: fc.constantFrom('batch' as const, 'batchAll' as const, 'forceBatch' as const),
      calls: fc.array(tie('tree'), { maxLength: 3 }),
      ok: fc.boolean(),
    }),
  ),
})).tree;

const arbExtrinsic = fc.record({
  signer: fc.oneof(
    { weight: 9, arbitrary: fc.constantFrom(...ACCOUNTS) },
    { weight: 1, arbitrary: fc.constant(null) },
  ),
  ok: fc.oneof({ weight: 9, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  call: arbTree,
});

/** A chain: block 1 creates NET, block 2 registers datasets 1..4, then random blocks (with gaps in numbering). */
const arbChain: fc.Arbitrary<ChainBlock[]> = fc
  .array(fc.tuple(fc.integer({ min: 1, max: 3 }), fc.array(arbExtrinsic, { maxLength: 5 })), {
    minLength: 1,
    maxLength: 25,
  })
  .map((steps) => {
    const blocks: ChainBlock[] = [
      callsBlock(1, [[ALICE, null, createCall()]]),
      callsBlock(
        2,
        [1, 2, 3, 4].map((i) => [ALICE, NET, datasetCall(hex32(i))]),
      ),
    ];
    let number = 2;
    for (const [gap, extrinsics] of steps) {
      number += gap;
      blocks.push(
        block(
          number,
          extrinsics.map((e, index): ChainExtrinsic => ({ index, ...e })),
        ),
      );
    }
    return blocks;
  });

describe('pallet-bindings reducer properties', () => {
  it('gives the same state by full replay and by snapshot-and-resume at any block', () => {
    fc.assert(
      fc.property(arbChain, fc.nat(), (blocks, cut) => {
        const full = reduceBlocks(initialState(), blocks);
        const at = 1 + (cut % blocks.length);
        const snapshot = encodeSnapshot(reduceBlocks(initialState(), blocks.slice(0, at)));
        const restored = decodeSnapshot(snapshot);
        expect(restored.blockHash).to.equal(blocks[at - 1]!.hash);
        const resumed = reduceBlocks(restored.state, blocks.slice(at));
        expect(resumed).to.deep.equal(full);
      }),
      { numRuns: 150 },
    );
  });

  it('never throws, never mutates its input, and is deterministic', () => {
    fc.assert(
      fc.property(arbChain, (blocks) => {
        let state = initialState();
        for (const b of blocks) {
          const before = JSON.stringify(state);
          const next = reduceBlock(state, b);
          expect(JSON.stringify(state)).to.equal(before);
          state = next;
        }
        expect(reduceBlocks(initialState(), blocks)).to.deep.equal(state);
      }),
      { numRuns: 100 },
    );
  });

  it('makes progress on random sequences (the generator reaches the interesting rules)', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(arbChain, (blocks) => {
        const s = reduceBlocks(initialState(), blocks);
        for (const a of s.audit) seen.add(a.code);
        for (const p of s.networks[NET]?.proposals ?? []) seen.add(`status:${p.status}`);
        for (const i of s.ignored) seen.add(i.code);
      }),
      { numRuns: 200, seed: 7 },
    );
    for (const code of [
      'E_NOT_MEMBER',
      'E_UNKNOWN_PROPOSAL',
      'E_MALFORMED_PAYLOAD',
      'E_UNKNOWN_NETWORK',
      'status:voting',
    ]) {
      expect(seen, code).to.include(code);
    }
  });
});
