// The byte-level tokenizer: the shared ids, and lossless round trips on every record of every corpus and on random text.
import { expect } from 'chai';
import fc from 'fast-check';
import {
  BOS,
  BUILTIN_NAMES,
  CLS,
  EOS,
  PAD,
  TOKENIZER_ID,
  VOCAB_SIZE,
  decode,
  encode,
} from '../../datasets/index.ts';
import { corpus, expectCode } from './corpora.ts';

describe('datasets/tokenizer', () => {
  it('keeps the ids the model is built on', () => {
    expect([BOS, EOS, PAD, CLS, VOCAB_SIZE]).to.deep.equal([256, 257, 258, 259, 260]);
    expect(TOKENIZER_ID).to.equal('fedtune-byte-v1');
  });

  it('encodes text as its UTF-8 bytes', () => {
    expect([...encode('hé€😀')]).to.deep.equal([...Buffer.from('hé€😀', 'utf8')]);
    expect([...encode('a', { bos: true, eos: true })]).to.deep.equal([BOS, 97, EOS]);
  });

  for (const name of BUILTIN_NAMES) {
    it(`round-trips every record of ${name}`, () => {
      const ds = corpus(name);
      let bytes = 0;
      for (const r of ds.records) {
        const ids = encode(r.text, { bos: true, eos: true });
        expect(ids.length).to.equal(Buffer.byteLength(r.text) + 2);
        if (decode(ids) !== r.text) throw new Error(`record ${r.id} did not round-trip`);
        bytes += ids.length - 2;
      }
      expect(bytes).to.be.greaterThan(1_000_000);
    });
  }

  it('round-trips arbitrary Unicode text, specials skipped', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 200 }), (s) => {
        const ids = encode(s, { bos: true, eos: true });
        const withSpecials = Int32Array.from([CLS, ...ids, PAD, PAD]);
        return (
          decode(ids) === s && decode(withSpecials) === s && ids.every((id) => id >= 0 && id < VOCAB_SIZE)
        );
      }),
      { numRuns: 500 },
    );
  });

  it('refuses ids outside the vocabulary', () => {
    expectCode(() => decode([104, 260]), 'E_TOKENIZER_BAD_ID');
    expectCode(() => decode([-1]), 'E_TOKENIZER_BAD_ID');
    expectCode(() => decode([1.5]), 'E_TOKENIZER_BAD_ID');
  });
});
