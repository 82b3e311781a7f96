// `fedtune worker register --consent | --batch`: the two halves of registerWorkers. A worker signs its consent offline
// (no chain, no funds); one account submits many consents in one extrinsic.
import { readFileSync } from 'node:fs';
import type { Hex32, KeyringPair, RegisterWorker, WorkerRegistration } from '../../pallet-bindings/index.ts';
import { processIo, type ChainArgs, type GlobalArgs } from '../options.ts';
import { logger, print, submitChecked, usage, withClient } from '../protocol.ts';
import { fields } from '../table.ts';

/** A consent as `--consent` prints it and `--batch` reads it. */
export interface Consent {
  network: Hex32;
  validUntil: number;
  registration: WorkerRegistration;
}

/** `--consent`: the worker's signature over its registration, printed as one JSON line. */
export async function printConsent(
  args: GlobalArgs,
  signer: KeyringPair,
  network: Hex32,
  validUntil: number,
  registration: RegisterWorker,
): Promise<void> {
  const { signRegistration } = await import('../../pallet-bindings/index.ts');
  const consent: Consent = {
    network,
    validUntil,
    registration: signRegistration(signer, network, validUntil, registration),
  };
  (args.io ?? processIo).stdout(`${JSON.stringify(consent)}\n`);
}

/** Consents from files: each a JSON consent, a JSON array of them, or one per line. */
export function readConsents(paths: readonly string[]): Consent[] {
  const out: Consent[] = [];
  for (const path of paths) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      throw usage(`cannot read ${path}: ${(error as Error).message}`);
    }
    const trimmed = text.trim();
    let values: unknown[];
    try {
      values = trimmed.startsWith('[')
        ? (JSON.parse(trimmed) as unknown[])
        : trimmed
            .split('\n')
            .filter((l) => l.trim() !== '')
            .map((l) => JSON.parse(l) as unknown);
    } catch (error) {
      throw usage(
        `${path} is not JSON consents (fedtune worker register --consent): ${(error as Error).message}`,
      );
    }
    for (const v of values) {
      const c = v as Partial<Consent>;
      if (
        typeof c?.network !== 'string' ||
        !Number.isInteger(c.validUntil) ||
        typeof c.registration !== 'object'
      )
        throw usage(`${path}: a consent has network, validUntil and registration, as --consent prints it`);
      out.push(c as Consent);
    }
  }
  return out;
}

/** `--batch`: submits every consent, for this network and one validUntil, as registerWorkers calls in one extrinsic. */
export async function submitConsents(
  args: GlobalArgs & ChainArgs & { from: number },
  signer: KeyringPair,
  network: Hex32,
  paths: readonly string[],
): Promise<void> {
  const consents = readConsents(paths);
  if (consents.length === 0) throw usage('--batch found no consents');
  const other = consents.find((c) => c.network !== network);
  if (other !== undefined)
    throw usage(`a consent of ${other.registration.account} is for network ${other.network}, not ${network}`);
  const validUntil = consents[0]!.validUntil;
  if (consents.some((c) => c.validUntil !== validUntil))
    throw usage(
      'the consents name different validUntil blocks: one batch takes one (ask the workers to sign again)',
    );
  const { registerWorkersCalls } = await import('../../pallet-bindings/index.ts');
  await withClient(args, logger(args), async (client) => {
    const calls = registerWorkersCalls(
      validUntil,
      consents.map((c) => c.registration),
    );
    const { inclusion } = await submitChecked(client, { signer, network, calls }, args.from);
    const workers = consents.map((c) => c.registration.account);
    print(args, { workers, submitter: signer.address, ...inclusion }, () =>
      fields([
        ['workers', workers.length],
        ['calls', calls.length],
        ['submitter', signer.address],
        ['block', inclusion.blockNumber],
      ]),
    );
  });
}
