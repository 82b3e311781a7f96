// A coordinator that cheats in its aggregate or its reported loss is caught by `round verify` with the right code.
import { join } from 'node:path';
import { expect } from 'chai';
import type { Hex32, RoundProposal } from '../../pallet-bindings/index.ts';
import { verifyRound } from '../../verify/index.ts';
import { inProcess } from '../run-cli.ts';
import { logger, readState, setUp, type Fixture } from '../rounds/helpers.ts';
import { dishonestRound, type Cheat } from './dishonest-coordinator.ts';

describe('round verify: a coordinator that cheats', function () {
  this.timeout(300_000);
  let f: Fixture;
  const closers: (() => Promise<void>)[] = [];

  before(async () => {
    f = await setUp('cheat');
  });
  after(async () => {
    await Promise.all(closers.map((c) => c()));
    await f?.close();
  });

  const verify = async (cheat: Cheat) => {
    const round = await dishonestRound(f, cheat);
    closers.push(round.close);
    const net = (await readState(f)).networks[f.network]!;
    return verifyRound({
      net,
      network: f.network,
      proposal: round.id,
      round: 0,
      blockHash: async (n) => (await f.client.api.rpc.chain.getBlockHash(n)).toHex(),
      cacheDir: join(f.dir, 'verify-cache'),
      logger,
    });
  };

  it('verifies the same hand-run round when it does not cheat', async () => {
    const report = await verify('none');
    expect(report.code, report.message).to.equal(undefined);
    expect(report.ok).to.equal(true);
  });

  it('names an aggregate that leaves an accepted update out: E_AGGREGATE_MISMATCH; attest says no with it', async () => {
    const report = await verify('omit');
    expect(report.ok).to.equal(false);
    expect(report.code).to.equal('E_AGGREGATE_MISMATCH');
    expect(report.culprit).to.equal(f.coordinator.address);
    const checkpoint = (await readState(f)).networks[f.network]!.proposals[report.proposal];
    const id = (checkpoint as RoundProposal).finalized[0]!.checkpoint.id;
    const run = await inProcess(
      [
        'checkpoint',
        'attest',
        id,
        '--seed',
        '//Alice',
        '--out',
        join(f.dir, 'attest'),
        '--max-examples',
        '32',
        '--json',
      ],
      { FEDTUNE_CHAIN: f.devnet.url, FEDTUNE_NETWORK: f.network },
    );
    expect(run.status, run.stderr).to.equal(0);
    const attested = JSON.parse(run.stdout) as { verdict: boolean; code: string | null };
    expect(attested).to.include({ verdict: false, code: 'E_AGGREGATE_MISMATCH' });
    const after = (await readState(f)).networks[f.network]!.checkpoints[id as Hex32]!;
    expect(after.certified).to.equal(false);
  });

  it('names an aggregate that scales one update: E_AGGREGATE_MISMATCH', async () => {
    const report = await verify('scale');
    expect(report.code).to.equal('E_AGGREGATE_MISMATCH');
  });

  it('names a committed loss lower than the checkpoint has: E_EVAL_MISMATCH', async () => {
    const report = await verify('eval');
    expect(report.code).to.equal('E_EVAL_MISMATCH');
    expect(report.culprit).to.equal(f.coordinator.address);
  });
});
