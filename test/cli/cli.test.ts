// The `fedtune` command tree: help, usage errors with exit status 2, the version (in this process through main), and
// that help loads only the command it names (a real process, to see what it imports).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { BIN, inProcess } from '../run-cli.ts';
import { commands } from '../../cli/commands/index.ts';
import * as choices from '../../cli/choices.ts';
import { BACKEND_CHOICES, PRESETS } from '../../model/index.ts';
import { BLOCK_MODES, DEFAULT_DEVNET_PORT } from '../../devchain/index.ts';

const TRACE = fileURLToPath(new URL('../trace-packages.mjs', import.meta.url));

/**
 * What a real `fedtune ARGS` process loads: npm packages by name, and the build's dist/vendor/ modules as
 * `dist/vendor/FILE` (bundled packages). `env` is added to the process's environment; `status` is the exit status
 * expected.
 */
function loadedBy(
  args: string[],
  { env = {}, status = 0 }: { env?: Record<string, string>; status?: number } = {},
): string[] {
  const result = spawnSync(process.execPath, ['--import', TRACE, BIN, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, ...env },
  });
  expect(result.status, result.stderr).to.equal(status);
  return [...result.stderr.matchAll(/^(package|vendored) (\S+)$/gm)].map((m) =>
    m[1] === 'package' ? m[2]! : `dist/vendor/${m[2]!}`,
  );
}

/**
 * Checks that help loaded yargs (installed, or its bundle in dist/vendor/yargs.js) and nothing heavy: no TensorFlow.js,
 * no @polkadot package, no ws, no protobufjs, no pino (required with the first logger), and none of dist/vendor/'s
 * other modules (@polkadot/api and the code it brings, ws among it, bundled).
 */
function expectLightHelp(loaded: string[], what: string): void {
  expect(loaded, what).to.satisfy((l: string[]) => l.includes('yargs') || l.includes('dist/vendor/yargs.js'));
  const heavy = loaded.filter(
    (p) =>
      p.startsWith('@tensorflow/') ||
      p.startsWith('@polkadot/') ||
      p === 'ws' ||
      p === 'protobufjs' ||
      p === 'pino' ||
      (p.startsWith('dist/vendor/') && p !== 'dist/vendor/yargs.js'),
  );
  expect(heavy, what).to.deep.equal([]);
}

describe('fedtune CLI', function () {
  this.timeout(60_000);

  it('prints help that names the global options and every command', async () => {
    const { status, stdout } = await inProcess(['--help']);
    expect(status).to.equal(0);
    expect(stdout).to.contain('fedtune <command>');
    expect(stdout).to.contain('--log-level');
    for (const c of commands) expect(stdout).to.contain(`fedtune ${c.command}`);
  });

  it('refuses a missing command with a usage error and exit status 2', async () => {
    const { status, stderr } = await inProcess([]);
    expect(status).to.equal(2);
    expect(stderr).to.match(/error \[E_USAGE\]/);
  });

  it('refuses an unknown command and an unknown option with exit status 2', async () => {
    const unknown = await inProcess(['chian']);
    expect(unknown.status).to.equal(2);
    expect(unknown.stderr).to.match(/error \[E_USAGE\].*chain/s);
    const option = await inProcess(['chain', 'state', '--bogus']);
    expect(option.status).to.equal(2);
    expect(option.stderr).to.match(/error \[E_USAGE\]: Unknown argument: bogus/);
  });

  it('prints the package version', async () => {
    const { status, stdout } = await inProcess(['--version']);
    expect(status).to.equal(0);
    expect(stdout.trim()).to.match(/^\d+\.\d+\.\d+$/);
  });

  it('prints help for each command and lists its subcommands', async () => {
    for (const c of commands) {
      const { status, stdout } = await inProcess([c.command, '--help']);
      expect(status, c.command).to.equal(0);
      expect(stdout, c.command).to.contain(`fedtune ${c.command}`).and.contain(c.describe.slice(0, 40));
    }
    const chain = await inProcess(['chain', '--help']);
    expect(chain.stdout).to.contain('fedtune chain state').and.contain('fedtune chain watch');
  });

  it('spells options and commands as the protocol does, keeping the old spellings as aliases', async () => {
    const round = await inProcess(['dao', 'propose-round', '--help']);
    expect(round.stdout)
      .to.match(/--fed-prox-mu, --mu/)
      .and.match(/--update-encoding, --encoding/)
      .and.match(/--optimiser, --optimizer/);
    const dao = await inProcess(['dao', '--help']);
    expect(dao.stdout).to.match(/fedtune dao propose-membership\s[^\n]*\n?[^\n]*\[aliases: propose-member\]/);
    // An alias is accepted and checked like the option it names.
    const bad = await inProcess(
      [
        'dao',
        'propose-round',
        '--seed',
        '//Alice',
        '--dataset',
        `0x${'ab'.repeat(32)}`,
        '--model-hash',
        `0x${'ef'.repeat(32)}`,
        '--mu',
        '-1',
      ],
      { FEDTUNE_NETWORK: `0x${'cd'.repeat(32)}` },
    );
    expect(bad.status, bad.stderr).to.equal(2);
    expect(bad.stderr).to.match(/error \[E_USAGE\]: --fed-prox-mu must be a number >= 0, got -1/);
  });

  it("names each command as its file does: the list's name and description are the loaded module's", async () => {
    for (const c of commands) {
      const loaded = await c.load();
      expect([loaded.command, loaded.describe]).to.deep.equal([c.command, c.describe]);
    }
  });

  it("offers the libraries' own choices in --help", () => {
    expect(choices.BACKEND_CHOICES).to.deep.equal(BACKEND_CHOICES);
    expect(choices.PRESET_NAMES).to.deep.equal(Object.keys(PRESETS));
    expect(choices.BLOCK_MODES).to.deep.equal(BLOCK_MODES);
    expect(choices.DEFAULT_DEVNET_PORT).to.equal(DEFAULT_DEVNET_PORT);
  });

  it('loads no TensorFlow.js, @polkadot/api, ws, protobufjs or pino for `--help` and `<command> --help`', () => {
    const helps = [
      ['--help'],
      ...commands.map((c) => [c.command, '--help']),
      ['chain', 'state', '--help'],
      ['worker', 'run', '--help'],
      ['checkpoint', 'attest', '--help'],
    ];
    // From the build when it is fresh (`npm test` builds first), else from the sources.
    for (const args of helps) expectLightHelp(loadedBy(args), args.join(' '));
    // From the sources too, whatever the build.
    for (const args of [['--help'], ['coordinator', '--help']]) {
      expectLightHelp(loadedBy(args, { env: { FEDTUNE_FROM_SOURCE: '1' } }), `${args.join(' ')} (sources)`);
    }
  });

  it('sees what a command loads, a bundled @polkadot/api and CommonJS required by CommonJS included', () => {
    // So that the test above can fail: a chain command loads @polkadot/api (from dist/vendor/ when built) and pino,
    // which requires sonic-boom from CommonJS, where no ES module resolution sees it. Nothing listens on port 1.
    const loaded = loadedBy(['chain', 'state', '--chain', 'ws://127.0.0.1:1'], { status: 1 });
    expect(loaded).to.include('sonic-boom');
    expect(loaded).to.satisfy(
      (l: string[]) => l.includes('@polkadot/api') || l.includes('dist/vendor/api.js'),
    );
    expect(() => expectLightHelp(loaded, 'chain state')).to.throw();
  });
});
