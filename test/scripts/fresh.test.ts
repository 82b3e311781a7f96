// bin/fresh.js: whether dist/ was built from the sources as they are. Newer times alone (a copied tree, a checkout and
// back) keep it fresh when the contents are the ones the build hashed; a changed, added or removed file does not.
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// eslint-disable-next-line fedtune/boundaries
import { contentHash, isFresh } from '../../bin/fresh.js';

describe('bin/fresh.js: is dist/ built from the sources as they are', () => {
  let root: string;
  const later = Date.now() / 1000 + 60;

  beforeEach(() => {
    root = `${mkdtempSync(join(tmpdir(), 'fedtune-fresh-'))}/`;
    mkdirSync(join(root, 'cli/sub'), { recursive: true });
    writeFileSync(join(root, 'cli/a.ts'), 'export const a = 1;\n');
    writeFileSync(join(root, 'cli/sub/b.ts'), 'export const b = 2;\n');
    writeFileSync(join(root, 'package.json'), '{}\n');
    mkdirSync(join(root, 'dist'));
    const builtAt = Date.now() + 5_000; // everything above is older than the build
    const hashes = { cli: contentHash(root, 'cli'), 'package.json': contentHash(root, 'package.json') };
    writeFileSync(join(root, 'dist/build.json'), JSON.stringify({ folders: ['cli'], builtAt, hashes }));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('is fresh when nothing is newer than the build, and when only the times moved', () => {
    expect(isFresh(root, ['package.json'])).to.equal(true);
    for (const f of ['cli/a.ts', 'cli/sub/b.ts', 'cli/sub', 'package.json'])
      utimesSync(join(root, f), later, later);
    expect(isFresh(root, ['package.json'])).to.equal(true);
  });

  it('is stale when a file in a folder changed', () => {
    writeFileSync(join(root, 'cli/sub/b.ts'), 'export const b = 3;\n');
    utimesSync(join(root, 'cli/sub/b.ts'), later, later);
    expect(isFresh(root)).to.equal(false);
  });

  it('is stale when a file was added or removed, or an extra path changed', () => {
    writeFileSync(join(root, 'cli/c.ts'), '');
    utimesSync(join(root, 'cli/c.ts'), later, later);
    expect(isFresh(root)).to.equal(false);
    unlinkSync(join(root, 'cli/c.ts'));
    unlinkSync(join(root, 'cli/a.ts'));
    utimesSync(join(root, 'cli'), later, later);
    expect(isFresh(root)).to.equal(false);
    writeFileSync(join(root, 'cli/a.ts'), 'export const a = 1;\n');
    expect(isFresh(root)).to.equal(true);
    writeFileSync(join(root, 'package.json'), '{"x":1}\n');
    utimesSync(join(root, 'package.json'), later, later);
    expect(isFresh(root)).to.equal(true);
    expect(isFresh(root, ['package.json'])).to.equal(false);
  });

  it('is stale without a build record, or with a newer file and no hash recorded (an older build)', () => {
    writeFileSync(
      join(root, 'dist/build.json'),
      JSON.stringify({ folders: ['cli'], builtAt: Date.now() + 5_000 }),
    );
    expect(isFresh(root)).to.equal(true);
    utimesSync(join(root, 'cli/a.ts'), later, later);
    expect(isFresh(root)).to.equal(false);
    rmSync(join(root, 'dist/build.json'));
    expect(isFresh(root)).to.equal(false);
  });
});
