// Rewards: a round's reward split in proportion to the samples each contributor's task stood for (floor division, so
// the sum never exceeds the proposal's rewardPerRound; the dust stays with the coordinator).
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

export function splitRewards(
  rules: RewardRules,
  contributors: readonly { account: string; samples: number }[],
): Reward[] {
  const samples = contributors.reduce((n, c) => n + BigInt(c.samples), 0n);
  if (rules.total <= 0n || samples === 0n) return [];
  const out: Reward[] = [];
  for (const c of contributors) {
    if (c.account === rules.payer) continue;
    const value = (rules.total * BigInt(c.samples)) / samples;
    if (value === 0n) continue;
    out.push({ dest: c.account, value: value.toString() });
  }
  return out;
}
