// `fedtune dataset shard --out` then `fedtune dataset register` against a devnet: the root lands in the protocol state.
// The commands run through the CLI's main() in this process (the README walkthrough runs them as processes).
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { pino } from 'pino';
import { inProcess as fedtune } from '../run-cli.ts';
import { startDevnet } from '../../devchain/index.ts';
import { connect, initialState, syncState } from '../../pallet-bindings/index.ts';

const ALICE = '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY';

describe('fedtune dataset register', function () {
  this.timeout(180_000);
  let devnet: { url: string; close(): Promise<void> };
  let dir: string;

  before(async () => {
    devnet = await startDevnet({ port: 0, logger: pino({ level: 'silent' }), blockMode: 'instant' });
    dir = mkdtempSync(join(tmpdir(), 'fedtune-register-'));
  });
  after(async () => {
    await devnet?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('registers the root of a sharded corpus, and refuses a manifest that is not one', async () => {
    const env = { FEDTUNE_CHAIN: devnet.url };
    const created = await fedtune(
      [
        'network',
        'create',
        '--seed',
        '//Alice',
        '--name',
        'data',
        '--member',
        ALICE,
        '--quorum',
        '1/1',
        '--voting-period',
        '5',
        '--json',
      ],
      env,
    );
    expect(created.status, created.stderr).to.equal(0);
    const { network } = JSON.parse(created.stdout) as { network: `0x${string}` };

    const manifestPath = join(dir, 'moby.json');
    const sharded = await fedtune(
      ['dataset', 'shard', 'moby-dick', '--scheme', 'iid', '--shards', '4', '--out', manifestPath, '--json'],
      env,
    );
    expect(sharded.status, sharded.stderr).to.equal(0);
    const { root } = JSON.parse(sharded.stdout) as { root: string };

    const registered = await fedtune(
      ['dataset', 'register', manifestPath, '--seed', '//Alice', '--network', network, '--json'],
      env,
    );
    expect(registered.status, registered.stderr).to.equal(0);
    const out = JSON.parse(registered.stdout) as {
      root: string;
      records: number;
      shards: number;
      blockNumber: number;
    };
    expect(out.root).to.equal(root);
    expect(out.shards).to.equal(4);

    const client = await connect({ url: devnet.url, logger: pino({ level: 'silent' }) });
    try {
      const state = await syncState(client, { state: initialState({ only: network }) });
      const datasets = state.networks[network]!.datasets as Record<string, { records: number; name: string }>;
      expect(datasets[root]).to.include({ name: 'moby-dick', records: out.records });
    } finally {
      await client.close();
    }

    // A tampered manifest: the root is recomputed from its contents, so a changed record hash gives another root,
    // and a file that is not a manifest is refused before anything is signed.
    const tampered = JSON.parse(readFileSync(manifestPath, 'utf8')) as { records: { hash: string }[] };
    tampered.records[0]!.hash = `0x${'00'.repeat(32)}`;
    writeFileSync(join(dir, 'tampered.json'), JSON.stringify(tampered));
    const again = await fedtune(
      [
        'dataset',
        'register',
        join(dir, 'tampered.json'),
        '--seed',
        '//Alice',
        '--network',
        network,
        '--json',
      ],
      env,
    );
    expect(again.status, again.stderr).to.equal(0);
    expect((JSON.parse(again.stdout) as { root: string }).root).to.not.equal(root);
    writeFileSync(join(dir, 'junk.json'), '{not json');
    const junk = await fedtune(
      ['dataset', 'register', join(dir, 'junk.json'), '--seed', '//Alice', '--network', network],
      env,
    );
    expect(junk.status).to.equal(2);
    expect(junk.stderr).to.contain('E_DATASET_MANIFEST');
  });
});
