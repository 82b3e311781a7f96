// The signing key options every submitting command shares: --seed or --keyfile (password from $FEDTUNE_KEY_PASSWORD or a prompt).
import { readFileSync } from 'node:fs';
import type { Argv } from 'yargs';
import type { KeyringPair } from '../pallet-bindings/index.ts';
import { FedtuneError } from './errors.ts';

export interface SignerArgs {
  seed?: string;
  keyfile?: string;
}

export function withSigner<T>(yargs: Argv<T>): Argv<T & SignerArgs> {
  return yargs
    .option('seed', {
      type: 'string',
      describe: 'Secret URI of the signing key: a dev seed like //Alice, or a mnemonic (or $FEDTUNE_SEED)',
    })
    .option('keyfile', {
      type: 'string',
      describe: 'polkadot.js JSON keystore; password from $FEDTUNE_KEY_PASSWORD or a prompt',
    })
    .conflicts('seed', 'keyfile') as unknown as Argv<T & SignerArgs>;
}

/** Reads a line from the terminal without echoing it. */
async function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    throw new FedtuneError(
      'E_NO_PASSWORD',
      'the keyfile needs a password: set FEDTUNE_KEY_PASSWORD or run on a terminal',
      {
        exitCode: 2,
      },
    );
  }
  process.stderr.write(question);
  stdin.setRawMode(true);
  stdin.resume();
  return new Promise((resolve, reject) => {
    let value = '';
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          done();
          resolve(value);
          return;
        }
        if (ch === '\u0003') {
          done();
          reject(new FedtuneError('E_ABORTED', 'password prompt aborted'));
          return;
        }
        value = ch === '\u007f' ? value.slice(0, -1) : value + ch;
      }
    };
    const done = () => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
    };
    stdin.on('data', onData);
  });
}

export async function loadSigner(args: SignerArgs): Promise<KeyringPair> {
  // The keyring loads here, not at import, so `--help` stays light.
  const { signerFromKeyfile, signerFromSeed } = await import('../pallet-bindings/index.ts');
  const seed = args.seed ?? (args.keyfile === undefined ? process.env.FEDTUNE_SEED : undefined);
  if (seed !== undefined && seed !== '') return signerFromSeed(seed);
  if (args.keyfile !== undefined) {
    let json: string;
    try {
      json = readFileSync(args.keyfile, 'utf8');
    } catch (cause) {
      throw new FedtuneError('E_BAD_KEYFILE', `cannot read keyfile ${args.keyfile}`, { exitCode: 2, cause });
    }
    const password =
      process.env.FEDTUNE_KEY_PASSWORD ?? (await promptHidden(`password for ${args.keyfile}: `));
    return signerFromKeyfile(json, password);
  }
  throw new FedtuneError(
    'E_NO_SIGNER',
    'this command signs an extrinsic: pass --seed //Alice (or a mnemonic) or --keyfile FILE',
    {
      exitCode: 2,
    },
  );
}
