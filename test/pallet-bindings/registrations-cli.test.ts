// `fedtune worker register --consent` and `--batch` against a devnet: workers sign offline, one account registers them.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { pino } from 'pino';
import { inProcess } from '../run-cli.ts';
import { startDevnet } from '../../devchain/index.ts';
import { ALICE, DAVE, EVE } from './fixtures.ts';

describe('fedtune worker register --consent / --batch', function () {
  this.timeout(180_000);
  let devnet: { url: string; close(): Promise<void> };
  let dir: string;

  before(async () => {
    devnet = await startDevnet({ port: 0, logger: pino({ level: 'silent' }), blockMode: 'instant' });
    dir = mkdtempSync(join(tmpdir(), 'fedtune-consents-'));
  });

  after(async () => {
    await devnet?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('registers workers by their signed consents in one extrinsic, and refuses a consent someone altered', async () => {
    const env = { FEDTUNE_CHAIN: devnet.url, FEDTUNE_CHAIN_CACHE: 'off' };
    const created = await inProcess(
      [
        'network',
        'create',
        '--seed',
        '//Alice',
        '--name',
        'consents',
        '--member',
        ALICE,
        '--coordinator',
        ALICE,
        '--json',
      ],
      env,
    );
    expect(created.status, created.stderr).to.equal(0);
    const { network } = JSON.parse(created.stdout) as { network: string };
    const netEnv = { ...env, FEDTUNE_NETWORK: network };

    const consent = async (seed: string, extra: string[] = []) => {
      const out = await inProcess(
        ['worker', 'register', '--seed', seed, '--consent', '--valid-until', '1000', ...extra],
        { ...netEnv, FEDTUNE_CHAIN: 'ws://127.0.0.1:1' }, // offline: a consent needs no chain
      );
      expect(out.status, out.stderr).to.equal(0);
      return out.stdout;
    };
    const good = join(dir, 'good.jsonl');
    writeFileSync(good, (await consent('//Dave', ['--device', 'gpu'])) + (await consent('//Eve')));

    const noBlock = await inProcess(['worker', 'register', '--seed', '//Dave', '--consent'], netEnv);
    expect(noBlock.status).to.equal(2);
    expect(noBlock.stderr).to.match(/error \[E_USAGE\].*--valid-until/);

    // Ferdie alters Dave's declared endpoint: the whole batch is refused, nobody is registered.
    const altered = join(dir, 'altered.jsonl');
    const lines = readFileSync(good, 'utf8').trim().split('\n');
    const dave = JSON.parse(lines[0]!) as { registration: { endpoint: string | null } };
    dave.registration.endpoint = 'ws://elsewhere:1';
    writeFileSync(altered, `${JSON.stringify(dave)}\n${lines[1]}\n`);
    const refused = await inProcess(['worker', 'register', '--seed', '//Ferdie', '--batch', altered], netEnv);
    expect(refused.status, refused.stderr).to.equal(1);
    expect(refused.stderr).to.match(/error \[E_BAD_REGISTRATION_SIGNATURE\].*worker 0/);

    const done = await inProcess(
      ['worker', 'register', '--seed', '//Ferdie', '--batch', good, '--json'],
      netEnv,
    );
    expect(done.status, done.stderr).to.equal(0);
    expect((JSON.parse(done.stdout) as { workers: string[] }).workers).to.deep.equal([DAVE, EVE]);

    const state = await inProcess(['chain', 'state', '--json'], netEnv);
    expect(state.status, state.stderr).to.equal(0);
    const workers = (
      JSON.parse(state.stdout) as {
        networks: Record<string, { workers: Record<string, { capabilities: { device: string } }> }>;
      }
    ).networks[network]!.workers;
    expect(Object.keys(workers).sort()).to.deep.equal([DAVE, EVE].sort());
    expect(workers[DAVE]!.capabilities.device).to.equal('gpu');
  });
});
