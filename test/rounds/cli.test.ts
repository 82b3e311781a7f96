// `fedtune coordinator` and `fedtune worker run` refuse bad arguments with E_USAGE and exit 2, before touching a chain (in-process, through main).
import { expect } from 'chai';
import { inProcess } from '../run-cli.ts';

const NETWORK = `0x${'ab'.repeat(32)}`;

describe('fedtune coordinator / worker run: arguments', function () {
  this.timeout(60_000);

  for (const [what, args, pattern] of [
    [
      'a listen address without a port',
      ['coordinator', '--seed', '//Ferdie', '--network', NETWORK, '--listen', 'localhost'],
      /--listen takes HOST:PORT/,
    ],
    [
      'a malformed network id',
      ['coordinator', '--seed', '//Ferdie', '--network', '0x12'],
      /--network must be 0x/,
    ],
    [
      'a negative retry count',
      ['coordinator', '--seed', '//Ferdie', '--network', NETWORK, '--max-retries', '-1'],
      /--max-retries/,
    ],
    [
      'an HTTP coordinator URL',
      ['worker', 'run', '--seed', '//Bob', '--coordinator', 'http://127.0.0.1:7300'],
      /--coordinator must be a ws/,
    ],
    [
      'zero tasks',
      ['worker', 'run', '--seed', '//Bob', '--coordinator', 'ws://127.0.0.1:7300', '--max-tasks', '0'],
      /--max-tasks/,
    ],
  ] as const) {
    it(`refuses ${what}`, async () => {
      const r = await inProcess([...args], { FEDTUNE_CHAIN: 'ws://127.0.0.1:1' });
      expect(r.status, r.stderr).to.equal(2);
      expect(r.stderr)
        .to.match(/E_USAGE/)
        .and.to.match(pattern);
    });
  }

  it('says where the chain is missing, with a code', async () => {
    const r = await inProcess(
      ['coordinator', '--seed', '//Ferdie', '--network', NETWORK, '--listen', '127.0.0.1:0'],
      {
        FEDTUNE_CHAIN: 'ws://127.0.0.1:1',
      },
    );
    expect(r.status).to.equal(1);
    expect(r.stderr).to.match(/E_CHAIN_UNREACHABLE/);
  });
});
