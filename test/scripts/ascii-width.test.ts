// The string-width that dist/vendor/yargs.js is built with (scripts/ascii-width.ts) answers as the real ones do, and
// the bundled yargs renders help exactly as the installed one (wrapping, wide and zero-width characters, ANSI).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { asciiWidth, NARROW } from '../../scripts/ascii-width.ts';

type StringWidth = (string: string, options?: object) => number;

const require = createRequire(import.meta.url);

/** The string-width each of yargs, cliui and cliui's wrap-ansi imports (three installed versions, or fewer). */
async function realStringWidths(): Promise<Map<string, StringWidth>> {
  const cliui = dirname(require.resolve('cliui'));
  const importers = {
    yargs: dirname(require.resolve('yargs/package.json')),
    cliui,
    'wrap-ansi': dirname(createRequire(`${cliui}/`).resolve('wrap-ansi')),
  };
  const found = new Map<string, StringWidth>();
  for (const [name, dir] of Object.entries(importers)) {
    const file = createRequire(`${dir}/`).resolve('string-width');
    found.set(name, ((await import(pathToFileURL(file).href)) as { default: StringWidth }).default);
  }
  return found;
}

const SAMPLES = [
  '',
  'plain ASCII, with punctuation: [boolean] <id> --chain=ws://127.0.0.1:9944',
  'a dash — and … and → and ≥ 2 × 3 ± 1 °',
  '日本語の説明',
  'thumbs 👍🏽 and a family 👨‍👩‍👧 and a keycap 1️⃣',
  '\u001b[31mred\u001b[0m',
  'e\u0301 combining, zero\u200bwidth, soft\u00adhyphen',
  '\t tab and \n newline',
  '©®',
];

describe('help text widths', function () {
  this.timeout(60_000);

  it('counts every character it answers for as one column, as each installed string-width does', async () => {
    const reals = await realStringWidths();
    expect([...reals.keys()]).to.deep.equal(['yargs', 'cliui', 'wrap-ansi']);
    const narrow: string[] = [];
    for (let code = 0; code <= 0xffff; code++) {
      const char = String.fromCharCode(code);
      if (NARROW.test(char)) narrow.push(char);
    }
    expect(narrow).to.have.length.greaterThan(95);
    for (const [name, real] of reals) {
      for (const char of narrow)
        expect(real(char), `${name}: U+${char.charCodeAt(0).toString(16)}`).to.equal(1);
      expect(real(narrow.join('')), name).to.equal(narrow.length);
    }
  });

  it('gives the real string-width result for any string, narrow or not', async () => {
    for (const [name, real] of await realStringWidths()) {
      const fast = asciiWidth(real);
      for (const sample of SAMPLES)
        expect(fast(sample), `${name}: ${JSON.stringify(sample)}`).to.equal(real(sample));
      expect(fast('中文', { ambiguousIsNarrow: false })).to.equal(real('中文', { ambiguousIsNarrow: false }));
    }
  });

  it('renders help in the bundled yargs (dist/vendor/yargs.js) exactly as in the installed one', async function () {
    const bundle = new URL('../../dist/vendor/yargs.js', import.meta.url);
    // `npm test` builds dist/ first; a bare mocha run without a build has no bundle to compare.
    if (!existsSync(bundle)) this.skip();
    type Yargs = typeof import('yargs');
    const builds = [(await import(bundle.href)) as Yargs, await import('yargs')];
    const texts = [];
    for (const { default: yargs } of builds) {
      let text = '';
      let y = yargs([]).scriptName('x').wrap(60);
      SAMPLES.forEach((sample, i) => {
        y = y.option(`o${i}`, { describe: `${sample} ${'word '.repeat(15)}`, type: 'string' });
      });
      await y.parseAsync(['--help'], {}, (_error, _args, output) => {
        text = output;
      });
      texts.push(text);
    }
    expect(texts[0]).to.include('日本語').and.include('👍🏽');
    expect(texts[0]).to.equal(texts[1]);
  });
});
