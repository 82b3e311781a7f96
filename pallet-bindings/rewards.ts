// The reward rule a finalizeRound must keep: the transfers batched with it pay only the round's contributors, each at
// most its share of the proposal's rewardPerRound by samples (floor), so together never more than rewardPerRound.
import { fail } from './draft.ts';
import type { Account, Contributor } from './types.ts';

/** Each contributor's share of `rewardPerRound` in planck, in proportion to its samples (floor; dust is not paid). */
export function rewardShares(
  rewardPerRound: string,
  contributors: readonly Contributor[],
): Map<Account, bigint> {
  const total = BigInt(rewardPerRound);
  const samples = new Map<Account, bigint>();
  let all = 0n;
  for (const c of contributors) {
    const s = BigInt(Math.max(0, Math.floor(c.samples)));
    samples.set(c.account, (samples.get(c.account) ?? 0n) + s);
    all += s;
  }
  const shares = new Map<Account, bigint>();
  for (const [account, s] of samples) shares.set(account, all === 0n ? 0n : (total * s) / all);
  return shares;
}

/** Throws E_REWARD_NOT_CONTRIBUTOR or E_REWARD_EXCEEDED when the batched transfers break the rule. */
export function checkRewards(
  rewardPerRound: string,
  contributors: readonly Contributor[],
  transfers: readonly { account: Account; amount: string }[],
): void {
  const shares = rewardShares(rewardPerRound, contributors);
  const paid = new Map<Account, bigint>();
  let sum = 0n;
  for (const t of transfers) {
    if (!shares.has(t.account)) {
      fail('E_REWARD_NOT_CONTRIBUTOR', `the batch pays ${t.account}, who is not a contributor of this round`);
    }
    const amount = BigInt(t.amount);
    paid.set(t.account, (paid.get(t.account) ?? 0n) + amount);
    sum += amount;
  }
  if (sum > BigInt(rewardPerRound)) {
    fail(
      'E_REWARD_EXCEEDED',
      `the batch pays ${sum} planck; the proposal's rewardPerRound is ${rewardPerRound}`,
    );
  }
  for (const [account, amount] of paid) {
    const share = shares.get(account)!;
    if (amount > share) {
      fail(
        'E_REWARD_EXCEEDED',
        `the batch pays ${account} ${amount} planck; its share by samples is at most ${share}`,
      );
    }
  }
}
