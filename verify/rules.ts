// The round's record on chain against the protocol's rules: each contributor's samples and shards as its signed
// update has them, the shards root, and the rewards the rules give.
import {
  fromHex,
  merkleRoot,
  rewardShares,
  toHex,
  type FinalizedRound,
  type RoundProposal,
} from '../pallet-bindings/index.ts';
import type { RoundContext } from './context.ts';
import type { RoundPublication } from './publication.ts';
import { taskSamples } from './task.ts';
import { VerifyFailure } from './types.ts';

export async function checkRules(
  p: RoundProposal,
  f: FinalizedRound,
  pub: RoundPublication,
  ctx: RoundContext,
): Promise<{ value: void; detail: string }> {
  const samples = taskSamples(ctx.fit);
  const byAccount = new Map(pub.updates.map((u) => [u.account, u]));
  for (const u of pub.updates)
    if (u.samples !== samples)
      throw new VerifyFailure(
        'E_REWARD_MISMATCH',
        `the update of ${u.account} counts ${u.samples} samples; every task of this round is ${samples} (local steps × batch size)`,
        f.coordinator,
      );
  for (const c of f.contributors) {
    const u = byAccount.get(c.account);
    if (!u)
      throw new VerifyFailure(
        'E_REWARD_MISMATCH',
        `contributor ${c.account} has no update under updatesRoot`,
        f.coordinator,
      );
    if (c.samples !== u.samples)
      throw new VerifyFailure(
        'E_REWARD_MISMATCH',
        `contributor ${c.account} is credited ${c.samples} samples; its update is ${u.samples}`,
        f.coordinator,
      );
    const same = c.shards.length === u.shards.length && c.shards.every((s, i) => s === u.shards[i]);
    if (!same || u.shards.some((s) => s >= ctx.manifest.shards.length))
      throw new VerifyFailure(
        'E_SHARDS_MISMATCH',
        `contributor ${c.account} is credited shards [${c.shards}]; it signed an update for shards [${u.shards}] of ${ctx.manifest.shards.length}`,
        f.coordinator,
      );
  }
  const shardLeaves = [...new Set(f.contributors.flatMap((c) => c.shards))]
    .sort((a, b) => a - b)
    .map((s) => fromHex(ctx.manifest.shards[s]!.leaf));
  const shardsRoot = shardLeaves.length > 0 ? toHex(merkleRoot(shardLeaves)) : `0x${'0'.repeat(64)}`;
  if (shardsRoot !== f.datasetShardsRoot)
    throw new VerifyFailure(
      'E_SHARDS_MISMATCH',
      `the contributors' shards hash to ${shardsRoot}, not the committed datasetShardsRoot ${f.datasetShardsRoot}`,
      f.coordinator,
    );
  const shares = rewardShares(p.round.rewardPerRound || '0', f.contributors);
  for (const r of f.rewards) {
    const due = shares.get(r.account);
    if (due === undefined || BigInt(r.amount) !== due)
      throw new VerifyFailure(
        'E_REWARD_MISMATCH',
        `${r.account} was paid ${r.amount}; the rules give it ${due ?? 0n}`,
        f.coordinator,
      );
  }
  return {
    value: undefined,
    detail: `${f.contributors.length} contributor(s): samples, shards, shards root and ${f.rewards.length} reward(s) follow the rules`,
  };
}
