// What the dao commands share: their options and the argument checks.
import type { Argv } from 'yargs';
import { withSigner, type SignerArgs } from '../keys.ts';
import { withChain, type ChainArgs, type GlobalArgs } from '../options.ts';
import { usage, withNetwork, type NetworkArgs } from '../protocol.ts';

export type Base = GlobalArgs & ChainArgs & NetworkArgs;
export type Submitting = Base & SignerArgs;

export function withBase<T>(y: Argv<T>, signing: boolean): Argv<T & Submitting> {
  const withNet = withNetwork(withChain(y));
  return (signing ? withSigner(withNet) : withNet) as unknown as Argv<T & Submitting>;
}

export const positiveInt = (name: string, v: number, min = 1) => {
  if (!Number.isInteger(v) || v < min || v > 0xffffffff)
    throw usage(`--${name} must be a whole number >= ${min}, got ${v}`);
  return v;
};
