// `fedtune dataset …` through main, in this process: tables, --json, a manifest written and verified, coded errors.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { inProcess } from '../run-cli.ts';

describe('fedtune dataset', function () {
  this.timeout(120_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fedtune-dataset-cli-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('list prints the three corpora with licence and source', async () => {
    const { status, stdout } = await inProcess(['dataset', 'list', '--json']);
    expect(status).to.equal(0);
    const rows = JSON.parse(stdout) as { name: string; records: number; license: string }[];
    expect(rows.map((r) => [r.name, r.records, r.license])).to.deep.equal([
      ['moby-dick', 139, 'Apache-2.0'],
      ['sotu', 233, 'Apache-2.0'],
      ['spam-assassin', 6046, 'Apache-2.0'],
    ]);
  });

  it('shard --out writes a manifest that verify accepts, and verify names a changed record', async () => {
    const data = join(dir, 'mail.jsonl');
    const lines = Array.from({ length: 40 }, (_, i) =>
      JSON.stringify({ text: `message ${i} ${'x'.repeat(i)}`, label: i % 3 === 0 ? 'spam' : 'ham' }),
    );
    writeFileSync(data, `${lines.join('\n')}\n`);
    const out = join(dir, 'mail.manifest.json');
    const shard = await inProcess([
      'dataset',
      'shard',
      data,
      '--scheme',
      'dirichlet',
      '--shards',
      '3',
      '--alpha',
      '1',
      '--seed',
      '4',
      '--out',
      out,
    ]);
    expect(shard.status, shard.stderr).to.equal(0);
    expect(shard.stdout).to.match(/root\s+0x[0-9a-f]{64}/);
    const manifest = JSON.parse(readFileSync(out, 'utf8')) as { root: string; shards: unknown[] };
    expect(manifest.shards).to.have.length(3);

    const ok = await inProcess([
      'dataset',
      'verify',
      data,
      '--root',
      manifest.root,
      '--manifest',
      out,
      '--json',
    ]);
    expect(ok.status, ok.stderr).to.equal(0);
    expect(JSON.parse(ok.stdout)).to.deep.include({ ok: true, root: manifest.root, records: 40 });

    const rebuilt = await inProcess([
      'dataset',
      'verify',
      data,
      '--root',
      manifest.root,
      '--scheme',
      'dirichlet',
      '--shards',
      '3',
      '--alpha',
      '1',
      '--seed',
      '4',
    ]);
    expect(rebuilt.status, rebuilt.stderr).to.equal(0);

    writeFileSync(
      data,
      `${lines.map((l, i) => (i === 7 ? l.replace('message', 'massage') : l)).join('\n')}\n`,
    );
    const bad = await inProcess(['dataset', 'verify', data, '--root', manifest.root, '--manifest', out]);
    expect(bad.status).to.equal(1);
    expect(bad.stderr).to.match(/error \[E_DATASET_ROOT_MISMATCH\].*7 \(line-8\)/);
  });

  it('inspect and shard report coded errors for bad input', async () => {
    const p = join(dir, 'bad.jsonl');
    writeFileSync(p, '{"text": "a"}\n"just a string"\n');
    const r = await inProcess(['dataset', 'inspect', p]);
    expect(r.status).to.not.equal(0);
    expect(r.stderr).to.match(/error \[E_DATASET_JSONL_NOT_OBJECT\].*line 2/);
    const s = await inProcess(['dataset', 'shard', 'moby-dick', '--scheme', 'dirichlet', '--shards', '2']);
    expect(s.stderr).to.match(/error \[E_SHARD_UNLABELLED\]/);
    // A missing parameter is named by the option that sets it.
    const n = await inProcess(['dataset', 'shard', 'moby-dick', '--scheme', 'iid']);
    expect(n.status).to.equal(2);
    expect(n.stderr).to.match(/error \[E_SHARD_BAD_PARAM\].*pass --shards N/);
  });

  it('shard sotu --scheme partition prints one president per shard', async () => {
    const { status, stdout } = await inProcess([
      'dataset',
      'shard',
      'sotu',
      '--scheme',
      'partition',
      '--json',
    ]);
    expect(status).to.equal(0);
    const summary = JSON.parse(stdout) as { shards: { key: string }[]; registerDataset: { shards: number } };
    expect(summary.shards[0]!.key).to.equal('George Washington');
    expect(summary.registerDataset.shards).to.equal(summary.shards.length);
    expect(summary.shards.every((s) => !s.key.includes(','))).to.equal(true);
  });
});
