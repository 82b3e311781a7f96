// Rewards: the reducer's own rule (rewardShares: each contributor's floor share of rewardPerRound by samples, so never
// more than rewardPerRound in all), less the coordinator itself, which pays; the dust stays with the coordinator.
import { rewardShares, type Contributor } from '../pallet-bindings/index.ts';

export interface RewardRules {
  /** The proposal's rewardPerRound, in planck. */
  total: bigint;
  /** The coordinator's own account: it pays, so it is never paid. */
  payer: string;
}

export interface Reward {
  dest: string;
  value: string;
}

export function splitRewards(rules: RewardRules, contributors: readonly Contributor[]): Reward[] {
  if (rules.total <= 0n) return [];
  const out: Reward[] = [];
  for (const [account, value] of rewardShares(rules.total.toString(), contributors)) {
    if (account === rules.payer || value === 0n) continue;
    out.push({ dest: account, value: value.toString() });
  }
  return out;
}
