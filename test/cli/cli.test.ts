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

/** The npm packages a real `fedtune ARGS` process imports. */
function packagesLoadedBy(args: string[]): string[] {
  const result = spawnSync(process.execPath, ['--import', TRACE, BIN, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(result.status, result.stderr).to.equal(0);
  return [...result.stderr.matchAll(/^package (\S+)$/gm)].map((m) => m[1]!);
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

  it('loads no TensorFlow.js and no @polkadot/api for `--help` and `<command> --help`', () => {
    const helps = [
      ['--help'],
      ...commands.map((c) => [c.command, '--help']),
      ['chain', 'state', '--help'],
      ['worker', 'run', '--help'],
      ['checkpoint', 'attest', '--help'],
    ];
    for (const args of helps) {
      const loaded = packagesLoadedBy(args);
      expect(loaded, args.join(' ')).to.include('yargs');
      expect(
        loaded.filter((p) => p.startsWith('@tensorflow/') || p.startsWith('@polkadot/')),
        args.join(' '),
      ).to.deep.equal([]);
    }
  });
});
