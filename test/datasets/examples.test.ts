// Training examples: packed LM windows with BOS/EOS at record boundaries, classification pairs with CLS and PAD.
import { expect } from 'chai';
import {
  BOS,
  CLS,
  EOS,
  PAD,
  classificationExamples,
  decode,
  encode,
  lmWindows,
  type DatasetRecord,
} from '../../datasets/index.ts';
import { corpus, expectCode } from './corpora.ts';

describe('datasets/examples', () => {
  const records: DatasetRecord[] = [
    { id: 'a', text: 'hello' },
    { id: 'b', text: 'wörld' },
    { id: 'c', text: '' },
  ];

  it('packs records as BOS + bytes + EOS into windows of the context length, padding only the last', () => {
    const windows = lmWindows(records, 4);
    const stream = [...records.flatMap((r) => [...encode(r.text, { bos: true, eos: true })])];
    expect(stream.length).to.equal(7 + 8 + 2);
    expect(windows.every((w) => w.length === 4)).to.equal(true);
    const flat = windows.flatMap((w) => [...w]);
    expect(flat.slice(0, stream.length)).to.deep.equal(stream);
    expect(flat.slice(stream.length)).to.deep.equal([PAD, PAD, PAD]);
    expect(lmWindows(records, 4, { dropLast: true })).to.have.length(4);
  });

  it('overlaps windows with a stride', () => {
    const windows = lmWindows([{ id: 'x', text: 'abcdefgh' }], 4, { stride: 2 });
    expect(windows.map((w) => [...w])).to.deep.equal([
      [BOS, 97, 98, 99],
      [98, 99, 100, 101],
      [100, 101, 102, 103],
      [102, 103, 104, EOS],
    ]);
  });

  it('keeps all of Moby Dick, chapter boundaries marked', () => {
    const ds = corpus('moby-dick');
    const windows = lmWindows(ds.records, 256);
    const flat = Int32Array.from(windows.flatMap((w) => [...w]));
    expect(flat.filter((t) => t === BOS).length).to.equal(ds.records.length);
    expect(flat.filter((t) => t === EOS).length).to.equal(ds.records.length);
    // Decoding skips specials, so the windows decode to the chapters run together.
    expect(decode(flat)).to.equal(ds.records.map((r) => r.text).join(''));
  });

  it('turns SpamAssassin into (tokens, label index) pairs with CLS after the text', () => {
    const ds = corpus('spam-assassin');
    const sample = ds.records.filter((_, i) => i % 97 === 0);
    const examples = classificationExamples(sample, ds.labels!, 128);
    examples.forEach((ex, i) => {
      const r = sample[i]!;
      expect(ex.tokens.length).to.equal(128);
      expect(ds.labels![ex.label]).to.equal(r.label);
      expect(ex.tokens[ex.clsIndex]).to.equal(CLS);
      const n = Math.min(Buffer.byteLength(r.text), 127);
      expect(ex.clsIndex).to.equal(n);
      expect([...ex.tokens.subarray(0, n)]).to.deep.equal([...encode(r.text).subarray(0, n)]);
      expect([...ex.tokens.subarray(n + 1)].every((t) => t === PAD)).to.equal(true);
    });
    const short = classificationExamples([{ id: 's', text: 'hi', label: 'spam' }], ['ham', 'spam'], 6)[0]!;
    expect([...short.tokens]).to.deep.equal([104, 105, CLS, PAD, PAD, PAD]);
    expect(short.label).to.equal(1);
  });

  it('refuses unlabelled or unknown labels and bad sizes', () => {
    expectCode(() => classificationExamples([{ id: 'x', text: 't' }], ['a'], 8), 'E_DATASET_UNLABELLED');
    expectCode(
      () => classificationExamples([{ id: 'x', text: 't', label: 'b' }], ['a'], 8),
      'E_DATASET_UNKNOWN_LABEL',
    );
    expectCode(() => lmWindows(records, 1), 'E_EXAMPLES_BAD_PARAM');
    expectCode(() => lmWindows(records, 4, { stride: 5 }), 'E_EXAMPLES_BAD_PARAM');
  });
});
