// The consumer commands against a real round: a devnet, the round engine and two trainers commit a checkpoint, then
// `fedtune checkpoint list | attest | download | verify` and `fedtune generate` run as a user would run them.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { startCoordinator, type Coordinator } from '../../coordinator/engine.ts';
import { runWorker, type RunningWorker } from '../../worker/runner.ts';
import type { Provenance } from '../../checkpoints/index.ts';
import { fedtune } from '../run-cli.ts';
import { approveProposal, logger, proposal, setUp, type Fixture } from '../rounds/helpers.ts';

describe('fedtune checkpoint: list, attest, download, verify, generate', function () {
  this.timeout(300_000);
  let f: Fixture;
  let coordinator: Coordinator;
  let workers: RunningWorker[];
  let id: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    f = await setUp('consumer');
    coordinator = await startCoordinator({
      chain: f.client,
      signer: f.coordinator,
      network: f.network,
      dataDir: join(f.dir, 'coordinator'),
      logger,
      evalExamples: 32,
    });
    workers = f.workers
      .slice(0, 2)
      .map((signer, i) =>
        runWorker({ url: coordinator.url, signer, cacheDir: join(f.dir, `w${i}`), logger }),
      );
    const p = await approveProposal(f, { rounds: 1, minWorkers: 2, maxWorkers: 2 });
    for (;;) {
      const got = await proposal(f, p);
      if (got.status === 'completed') {
        id = got.finalized[0]!.checkpoint.id;
        break;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    env = { FEDTUNE_CHAIN: f.devnet.url, FEDTUNE_NETWORK: f.network };
  });
  after(async () => {
    await Promise.all((workers ?? []).map((w) => w.close()));
    await coordinator?.close();
    await f?.close();
  });

  it('lists the committed checkpoint, refuses to generate from it until a member attests, then certifies it', async () => {
    const listed = await fedtune(['checkpoint', 'list', '--json'], env);
    expect(listed.status, listed.stderr).to.equal(0);
    const rows = JSON.parse(listed.stdout) as {
      id: string;
      kind: string;
      certified: boolean;
      parent: string | null;
    }[];
    expect(rows).to.have.length(1);
    expect(rows[0]).to.include({ id, kind: 'pretrain', certified: false, parent: null });

    const refused = await fedtune(
      ['generate', '--checkpoint', id, '--prompt', 'x', '--cache', join(f.dir, 'gen')],
      env,
    );
    expect(refused.status).to.equal(1);
    expect(refused.stderr).to.match(/E_NOT_CERTIFIED/);

    const attested = await fedtune(
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
      env,
    );
    expect(attested.status, attested.stderr).to.equal(0);
    const verdict = JSON.parse(attested.stdout) as {
      evalLoss: number;
      reportedEvalLoss: number;
      verdict: boolean;
      certified: boolean;
    };
    // The member scored the same held-out examples as the coordinator: the same loss.
    expect(verdict.evalLoss).to.be.closeTo(verdict.reportedEvalLoss, 1e-4);
    expect(verdict).to.include({ verdict: true, certified: true });
    const certified = JSON.parse(
      (await fedtune(['checkpoint', 'list', '--certified', '--json'], env)).stdout,
    ) as unknown[];
    expect(certified).to.have.length(1);
  });

  it('downloads with provenance, verifies every byte, catches a flipped byte, and generates', async () => {
    const dir = join(f.dir, 'download');
    const got = await fedtune(['checkpoint', 'download', id, '--out', dir, '--json'], env);
    expect(got.status, got.stderr).to.equal(0);
    for (const file of ['model.safetensors', 'manifest.json', 'config.json', 'provenance.json'])
      expect(existsSync(join(dir, file)), file).to.equal(true);
    const provenance = JSON.parse(readFileSync(join(dir, 'provenance.json'), 'utf8')) as Provenance;
    const p = await proposal(f, 0);
    const round = p.finalized[0]!;
    expect(provenance.genesisHash).to.equal(f.client.genesisHash);
    expect(provenance.lineage).to.have.length(1);
    expect(provenance.lineage[0]).to.deep.include({
      checkpoint: id,
      kind: 'pretrain',
      parent: null,
      block: round.block,
    });
    expect(provenance.lineage[0]!.blockHash).to.equal(
      (await f.client.api.rpc.chain.getBlockHash(round.block)).toHex(),
    );
    expect(provenance.lineage[0]!.dataset.root).to.equal(f.dataset);
    expect(provenance.lineage[0]!.contributors.map((c) => c.account).sort()).to.deep.equal(
      f.workers
        .slice(0, 2)
        .map((w) => w.address)
        .sort(),
    );

    const verified = await fedtune(['checkpoint', 'verify', dir], env);
    expect(verified.status, verified.stderr).to.equal(0);
    expect(verified.stdout).to.match(/verified: .* certified/);

    const text = await fedtune(
      ['generate', '--checkpoint', dir, '--prompt', 'Call me', '--tokens', '20'],
      env,
    );
    expect(text.status, text.stderr).to.equal(0);
    expect(text.stdout.startsWith('Call me')).to.equal(true);

    const bytes = readFileSync(join(dir, 'model.safetensors'));
    bytes[bytes.length - 1] ^= 0xff;
    writeFileSync(join(dir, 'model.safetensors'), bytes);
    const broken = await fedtune(['checkpoint', 'verify', dir], env);
    expect(broken.status).to.equal(1);
    expect(broken.stderr).to.match(/E_CHUNK_CORRUPT.*chunk 0/);
  });

  it('refuses a corrupted chunk on the server, naming it and keeping nothing, and a malformed id', async () => {
    const manifest = (await coordinator.store.getManifest(id))!;
    const path = coordinator.store.chunkPath(manifest.chunks[0]!);
    const original = readFileSync(path);
    const corrupt = Buffer.from(original);
    corrupt[10] ^= 0xff;
    writeFileSync(path, corrupt);
    try {
      const dir = join(f.dir, 'corrupt');
      const got = await fedtune(['checkpoint', 'download', id, '--out', dir], env);
      expect(got.status).to.equal(1);
      expect(got.stderr)
        .to.match(/E_CHUNK_CORRUPT/)
        .and.to.match(/chunk 0/);
      expect(existsSync(join(dir, 'model.safetensors'))).to.equal(false);
    } finally {
      writeFileSync(path, original);
    }
    const bad = await fedtune(['checkpoint', 'download', '0x12', '--out', join(f.dir, 'x')], env);
    expect(bad.status).to.equal(2);
    expect(bad.stderr).to.match(/E_USAGE/);
  });
});
