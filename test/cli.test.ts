// The `fedtune` executable as a user runs it: help, and clear usage errors with exit status 2.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const BIN = fileURLToPath(new URL('../bin/fedtune.js', import.meta.url));

export function runFedtune(args: string[], env: NodeJS.ProcessEnv = {}) {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, FEDTUNE_LOG_LEVEL: 'warn', ...env },
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('fedtune CLI', () => {
  it('prints help that names the global options', () => {
    const { status, stdout } = runFedtune(['--help']);
    expect(status).to.equal(0);
    expect(stdout).to.contain('fedtune <command>');
    expect(stdout).to.contain('--log-level');
  });

  it('refuses a missing command with a usage error and exit status 2', () => {
    const { status, stderr } = runFedtune([]);
    expect(status).to.equal(2);
    expect(stderr).to.match(/error \[E_USAGE\]/);
  });

  it('prints the package version', () => {
    const { status, stdout } = runFedtune(['--version']);
    expect(status).to.equal(0);
    expect(stdout.trim()).to.match(/^\d+\.\d+\.\d+$/);
  });
});
