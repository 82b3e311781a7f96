// `fedtune dao dispute | uphold`, `checkpoint attest --code` and where disputes, bars and coded "no" attests show:
// argument checks in this process before any chain call, then the commands against a devnet.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { pino } from 'pino';
import { startDevnet } from '../../devchain/index.ts';
import {
  connect,
  signerFromSeed,
  submit,
  type ChainClient,
  type FedtuneCall,
  type Hex32,
  type KeyringPair,
} from '../../pallet-bindings/index.ts';
import { inProcess, type CliResult } from '../run-cli.ts';
import { ALICE, BOB, CHARLIE, DAVE, EVE, FERDIE, datasetCall, hex32, roundFields } from './fixtures.ts';

const NETWORK = `0x${'cd'.repeat(32)}`;
const CKPT0 = hex32(0xc0);

describe('fedtune dao dispute / uphold and checkpoint attest --code', function () {
  this.timeout(180_000);

  describe('argument checks, before any chain call', () => {
    // Nothing listens on port 1: a command that got as far as connecting would fail with E_CHAIN_UNREACHABLE.
    const env = { FEDTUNE_CHAIN: 'ws://127.0.0.1:1', FEDTUNE_NETWORK: NETWORK, FEDTUNE_SEED: '//Bob' };
    const dispute = (over: Record<string, string>) => {
      const args: Record<string, string> = {
        proposal: '0',
        round: '0',
        accused: EVE,
        code: 'E_WORK_MISMATCH',
        evidence: `0x${'ee'.repeat(32)}`,
        ...over,
      };
      return inProcess(['dao', 'dispute', ...Object.entries(args).flatMap(([k, v]) => [`--${k}`, v])], env);
    };
    const refused = async (run: Promise<CliResult>, code: string, text: RegExp) => {
      const r = await run;
      expect(r.status, r.stderr).to.equal(2);
      expect(r.stderr).to.contain(`error [${code}]`).and.match(text);
    };

    it('refuses a code that is not a failure code (E_BAD_CODE)', async () => {
      await refused(dispute({ code: 'e_work_mismatch' }), 'E_BAD_CODE', /A-Z, 0-9 and _/);
      await refused(dispute({ code: `E_${'X'.repeat(31)}` }), 'E_BAD_CODE', /1 to 32 characters/);
      await refused(dispute({ code: 'E_WORK MISMATCH' }), 'E_BAD_CODE', /"E_WORK MISMATCH"/);
    });

    it('refuses a bad proposal, round or account, and evidence that is neither a hash nor a readable file', async () => {
      await refused(dispute({ proposal: '-1' }), 'E_USAGE', /--proposal must be a whole number >= 0/);
      await refused(dispute({ round: '1.5' }), 'E_USAGE', /--round must be a whole number >= 0/);
      await refused(dispute({ accused: 'nobody' }), 'E_BAD_ACCOUNT', /nobody/);
      await refused(
        dispute({ evidence: join(tmpdir(), 'no-such-verify-report.json') }),
        'E_EVIDENCE_UNREADABLE',
        /ENOENT/,
      );
      await refused(dispute({ evidence: '0x1234' }), 'E_EVIDENCE_UNREADABLE', /0x \+ 64 hex digits/);
    });

    it('refuses a dispute without its code or evidence, and an uphold of no dispute', async () => {
      const missing = await inProcess(
        ['dao', 'dispute', '--proposal', '0', '--round', '0', '--accused', EVE],
        env,
      );
      expect(missing.status).to.equal(2);
      expect(missing.stderr).to.contain('E_USAGE').and.contain('code').and.contain('evidence');
      await refused(inProcess(['dao', 'uphold', '--dispute', '-2'], env), 'E_USAGE', /--dispute must be/);
      const none = await inProcess(['dao', 'uphold'], env);
      expect(none.status).to.equal(2);
      expect(none.stderr).to.contain('E_USAGE').and.contain('dispute');
    });

    it('attest: --code only with a no, and only a failure code', async () => {
      const id = `0x${'c0'.repeat(32)}`;
      await refused(
        inProcess(['checkpoint', 'attest', id, '--verdict', 'yes', '--code', 'E_X'], env),
        'E_USAGE',
        /--verdict yes takes none/,
      );
      await refused(
        inProcess(['checkpoint', 'attest', id, '--verdict', 'no', '--code', 'mismatch'], env),
        'E_BAD_CODE',
        /"mismatch"/,
      );
    });
  });

  describe('on a devnet', () => {
    let devnet: { url: string; close(): Promise<void> };
    let client: ChainClient;
    let dir: string;
    let net: Hex32;
    let env: NodeJS.ProcessEnv;

    const send = (signer: KeyringPair, call: FedtuneCall) =>
      submit(client, { signer, network: call.type === 'createNetwork' ? null : net, calls: [call] });

    before(async () => {
      devnet = await startDevnet({ port: 0, logger: pino({ level: 'silent' }), blockMode: 'instant' });
      client = await connect({ url: devnet.url, logger: pino({ level: 'silent' }) });
      dir = mkdtempSync(join(tmpdir(), 'fedtune-dispute-cli-'));
      const [alice, bob, dave, eve] = await Promise.all(
        ['//Alice', '//Bob', '//Dave', '//Eve'].map((s) => signerFromSeed(s)),
      );
      // Members Alice, Bob, Charlie (2 of 3 uphold); Dave coordinates; round 0 of proposal 0 by Eve and Ferdie.
      const created = await send(alice!, {
        type: 'createNetwork',
        name: 'dispute-cli',
        members: [ALICE, BOB, CHARLIE],
        quorum: { numerator: 2, denominator: 3 },
        votingPeriod: 3,
        coordinators: [DAVE],
      });
      const { deriveNetworkId } = await import('../../pallet-bindings/index.ts');
      net = deriveNetworkId(created.blockHash, created.extrinsicIndex, 0);
      env = { FEDTUNE_CHAIN: devnet.url, FEDTUNE_NETWORK: net };
      const data = hex32(0xd1);
      await send(alice!, datasetCall(data));
      await send(alice!, { type: 'proposeRound', ...roundFields(data, { rewardPerRound: '0' }) });
      await send(alice!, { type: 'vote', proposal: 0, aye: true });
      await send(bob!, { type: 'vote', proposal: 0, aye: true });
      // One more block: the voting period ends with it, and the proposal is approved.
      await send(eve!, {
        type: 'registerWorker',
        capabilities: { backend: 'wasm', device: 'cpu', memoryBytes: 1 },
        endpoint: null,
      });
      await send(dave!, { type: 'openRound', proposal: 0, coordinatorEndpoint: 'ws://127.0.0.1:7000' });
      await send(dave!, {
        type: 'finalizeRound',
        proposal: 0,
        round: 0,
        checkpoint: { id: CKPT0, bytes: 10, uri: 'http://127.0.0.1:1/c' },
        updatesRoot: hex32(0xe1),
        contributors: [
          { account: EVE, samples: 8, shards: [0] },
          { account: FERDIE, samples: 8, shards: [1] },
        ],
        datasetShardsRoot: hex32(0xe2),
        metrics: { trainLoss: 2, evalLoss: 2.5, extra: [] },
      });
      // Bob's verification failed: his "no" carries the code (what `checkpoint attest --verdict no --code` sends).
      await send(bob!, {
        type: 'attest',
        checkpoint: CKPT0,
        evalLoss: 7,
        verdict: false,
        code: 'E_AGGREGATE_MISMATCH',
      });
    });
    after(async () => {
      await client?.close();
      await devnet?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('shows a coded "no" in checkpoint list and chain audit', async () => {
      const list = await inProcess(['checkpoint', 'list'], env);
      expect(list.status, list.stderr).to.equal(0);
      expect(list.stdout).to.contain('refused').and.contain('no: E_AGGREGATE_MISMATCH (5FHneW46…');
      const audit = await inProcess(['chain', 'audit'], env);
      expect(audit.status, audit.stderr).to.equal(0);
      expect(audit.stdout).to.contain('attested no').and.contain('no: E_AGGREGATE_MISMATCH (5FHneW46…');
      const json = await inProcess(['chain', 'audit', '--json'], env);
      const refused = (JSON.parse(json.stdout) as { refused: { account: string; code: string }[] }).refused;
      expect(refused).to.have.length(1);
      expect(refused[0]).to.include({ account: BOB, code: 'E_AGGREGATE_MISMATCH', checkpoint: CKPT0 });
    });

    it('disputes a worker with a file as evidence, upholds it to the quorum, and shows the bar everywhere', async () => {
      const report = join(dir, 'verify.json');
      writeFileSync(report, JSON.stringify({ ok: false, code: 'E_WORK_MISMATCH', worker: EVE }));
      const sha = `0x${createHash('sha256')
        .update(JSON.stringify({ ok: false, code: 'E_WORK_MISMATCH', worker: EVE }))
        .digest('hex')}`;
      const made = await inProcess(
        [
          'dao',
          'dispute',
          '--seed',
          '//Bob',
          '--proposal',
          '0',
          '--round',
          '0',
          '--accused',
          EVE,
          '--code',
          'E_WORK_MISMATCH',
          '--evidence',
          report,
          '--json',
        ],
        env,
      );
      expect(made.status, made.stderr).to.equal(0);
      expect(JSON.parse(made.stdout)).to.include({
        dispute: 0,
        status: 'open',
        upholds: 1,
        needed: 2,
        evidence: sha,
      });

      const twice = await inProcess(['dao', 'uphold', '--seed', '//Bob', '--dispute', '0'], env);
      expect(twice.status).to.equal(1);
      expect(twice.stderr).to.contain('error [E_DOUBLE_UPHOLD]');

      const upheld = await inProcess(['dao', 'uphold', '--seed', '//Charlie', '--dispute', '0'], env);
      expect(upheld.status, upheld.stderr).to.equal(0);
      expect(upheld.stdout).to.match(/status:\s+upheld at block \d+: worker barred/);

      const show = await inProcess(['dao', 'show', '0'], env);
      expect(show.status, show.stderr).to.equal(0);
      expect(show.stdout).to.contain('disputes').and.contain(EVE).and.contain('E_WORK_MISMATCH');

      const state = await inProcess(['chain', 'state'], env);
      expect(state.status, state.stderr).to.equal(0);
      expect(state.stdout)
        .to.contain('barred in')
        .and.match(new RegExp(`${EVE}\\s+worker\\s+0\\s+E_WORK_MISMATCH`));
      const json = JSON.parse((await inProcess(['chain', 'state', '--json'], env)).stdout) as {
        networks: Record<string, { barredWorkers: Record<string, { dispute: number; code: string }> }>;
      };
      expect(json.networks[net]!.barredWorkers[EVE]).to.include({ dispute: 0, code: 'E_WORK_MISMATCH' });

      // Eve is barred in every role she played: a second dispute could change nothing.
      const again = await inProcess(
        [
          'dao',
          'dispute',
          '--seed',
          '//Alice',
          '--proposal',
          '0',
          '--round',
          '0',
          '--accused',
          EVE,
          '--code',
          'E_UPDATE_HASH',
          '--evidence',
          sha,
        ],
        env,
      );
      expect(again.status).to.equal(1);
      expect(again.stderr).to.contain('error [E_ALREADY_BARRED]');
    });
  });
});
