// Sharding: every record exactly once, reproducible for a seed, partition by speaker, Dirichlet skew that grows as alpha shrinks.
import { expect } from 'chai';
import {
  Prng,
  labelSkew,
  shardDataset,
  type Dataset,
  type ShardParameters,
  type ShardPlan,
} from '../../datasets/index.ts';
import { corpus, expectCode } from './corpora.ts';

function expectPartitionOf(plan: ShardPlan, n: number): void {
  const seen = new Uint8Array(n);
  for (const idx of [plan.eval, ...plan.shards]) {
    for (const i of idx) {
      expect(i).to.be.within(0, n - 1);
      seen[i]!++;
    }
  }
  const wrong = [...seen].findIndex((c) => c !== 1);
  expect(wrong, `record ${wrong} appears ${seen[wrong]} times`).to.equal(-1);
  for (const s of plan.shards) {
    expect(s.length).to.be.greaterThan(0);
    expect(s).to.deep.equal([...s].sort((a, b) => a - b));
  }
}

const cases: [string, 'moby-dick' | 'sotu' | 'spam-assassin', ShardParameters][] = [
  ['iid on moby-dick', 'moby-dick', { scheme: 'iid', shards: 7 }],
  ['iid on spam-assassin', 'spam-assassin', { scheme: 'iid', shards: 10, evalFraction: 0.2 }],
  ['partition on sotu', 'sotu', { scheme: 'partition' }],
  ['partition on sotu into 5 shards', 'sotu', { scheme: 'partition', shards: 5 }],
  ['dirichlet on spam-assassin', 'spam-assassin', { scheme: 'dirichlet', shards: 8, alpha: 0.5 }],
];

describe('datasets/sharding', () => {
  for (const [what, name, params] of cases) {
    describe(what, () => {
      it('covers every record exactly once (eval split + shards)', () => {
        const ds = corpus(name);
        for (const seed of [0, 1, 12345])
          expectPartitionOf(shardDataset(ds, { ...params, seed }), ds.records.length);
      });

      it('is reproducible for a seed and differs for another seed', () => {
        const ds = corpus(name);
        const a = shardDataset(ds, { ...params, seed: 7 });
        expect(shardDataset(ds, { ...params, seed: 7 })).to.deep.equal(a);
        const b = shardDataset(ds, { ...params, seed: 8 });
        expect(b.eval).to.not.deep.equal(a.eval);
        if (params.scheme !== 'partition') expect(b.shards).to.not.deep.equal(a.shards);
      });
    });
  }

  it('holds out round(fraction * n) records, stratified by label', () => {
    const ds = corpus('spam-assassin');
    const plan = shardDataset(ds, { scheme: 'iid', shards: 4, evalFraction: 0.25, seed: 3 });
    expect(plan.eval).to.have.length(Math.round(0.25 * 6046));
    const spamShare = (idx: number[]) =>
      idx.filter((i) => ds.records[i]!.label === 'spam').length / idx.length;
    expect(spamShare(plan.eval)).to.be.closeTo(1896 / 6046, 0.001);
    expect(shardDataset(ds, { scheme: 'iid', shards: 4, evalFraction: 0 }).eval).to.have.length(0);
  });

  it('iid shards are equal in size to within one record', () => {
    const plan = shardDataset(corpus('moby-dick'), { scheme: 'iid', shards: 6, seed: 2 });
    const sizes = plan.shards.map((s) => s.length);
    expect(Math.max(...sizes) - Math.min(...sizes)).to.be.at.most(1);
  });

  it('the SOTU speaker split gives each shard one president’s speeches, all of them', () => {
    const ds = corpus('sotu');
    const president = (i: number) => ds.records[i]!.meta!.president as string;
    const plan = shardDataset(ds, { scheme: 'partition', seed: 4 });
    const trainPresidents = new Set(plan.shards.flat().map(president));
    expect(plan.shards).to.have.length(trainPresidents.size);
    expect(trainPresidents.size).to.be.at.least(40);
    plan.shards.forEach((s, k) => {
      const names = new Set(s.map(president));
      expect([...names]).to.deep.equal([plan.keys![k]]);
    });
    // Each president's training speeches are all in their shard.
    for (const [k, s] of plan.shards.entries()) {
      const all = plan.shards.flat().filter((i) => president(i) === plan.keys![k]);
      expect(s).to.deep.equal(all);
    }
    expect(plan.keys![0]).to.equal('George Washington');
  });

  it('a partition into fewer shards never splits a president', () => {
    const ds = corpus('sotu');
    const plan = shardDataset(ds, { scheme: 'partition', shards: 5 });
    const owner = new Map<string, number>();
    plan.shards.forEach((s, k) =>
      s.forEach((i) => {
        const p = ds.records[i]!.meta!.president as string;
        expect(owner.get(p) ?? k).to.equal(k);
        owner.set(p, k);
      }),
    );
  });

  it('Dirichlet label skew grows as alpha shrinks (100 vs 1 vs 0.1)', () => {
    const ds = corpus('spam-assassin');
    for (const seed of [0, 1, 2]) {
      const skew = (alpha: number) =>
        labelSkew(ds, shardDataset(ds, { scheme: 'dirichlet', shards: 10, alpha, seed }));
      const [s100, s1, s01] = [skew(100), skew(1), skew(0.1)];
      expect(s100).to.be.below(0.05);
      expect(s1).to.be.above(s100);
      expect(s01).to.be.above(s1);
      expect(s01).to.be.above(0.25);
    }
  });

  it('Dirichlet skew on a four-label synthetic set: near 0 for IID, large for alpha 0.1', () => {
    const ds: Dataset = {
      name: 'four',
      license: 'CC0-1.0',
      source: 'test',
      description: 'four labels',
      labels: ['a', 'b', 'c', 'd'],
      records: Array.from({ length: 2000 }, (_, i) => ({
        id: `r${i}`,
        text: `x${i}`,
        label: 'abcd'[i % 4]!,
      })),
    };
    const iid = labelSkew(ds, shardDataset(ds, { scheme: 'iid', shards: 8 }));
    const skewed = labelSkew(ds, shardDataset(ds, { scheme: 'dirichlet', shards: 8, alpha: 0.1 }));
    expect(iid).to.be.below(0.1);
    expect(skewed).to.be.above(0.5);
  });

  it('refuses what it cannot do, with codes', () => {
    expectCode(
      () => shardDataset(corpus('moby-dick'), { scheme: 'dirichlet', shards: 2 }),
      'E_SHARD_UNLABELLED',
    );
    expectCode(() => shardDataset(corpus('moby-dick'), { scheme: 'partition' }), 'E_SHARD_NO_PARTITION');
    expectCode(() => shardDataset(corpus('moby-dick'), { scheme: 'iid', shards: 200 }), 'E_SHARD_TOO_MANY');
    expectCode(() => shardDataset(corpus('sotu'), { scheme: 'partition', shards: 50 }), 'E_SHARD_TOO_MANY');
    expectCode(() => shardDataset(corpus('moby-dick'), { scheme: 'iid' }), 'E_SHARD_BAD_PARAM');
    expectCode(
      () => shardDataset(corpus('moby-dick'), { scheme: 'iid', shards: 2, evalFraction: 1 }),
      'E_SHARD_BAD_PARAM',
    );
    expectCode(
      () => shardDataset(corpus('spam-assassin'), { scheme: 'dirichlet', shards: 2, alpha: 0 }),
      'E_SHARD_BAD_PARAM',
    );
    expectCode(() => shardDataset(corpus('sotu'), { scheme: 'partition', by: 'mood' }), 'E_SHARD_NO_KEY');
  });
});

describe('datasets/prng', () => {
  it('is deterministic per seed and stream', () => {
    const draw = (seed: number, stream: number) => {
      const r = new Prng(seed, stream);
      return Array.from({ length: 5 }, () => r.nextU32());
    };
    expect(draw(1, 0)).to.deep.equal(draw(1, 0));
    expect(draw(1, 0)).to.not.deep.equal(draw(2, 0));
    expect(draw(1, 0)).to.not.deep.equal(draw(1, 1));
  });

  it('draws Gamma samples with mean ≈ shape and Dirichlet vectors that sum to 1', () => {
    const r = new Prng(42);
    for (const shape of [0.1, 0.5, 1, 3, 20]) {
      let sum = 0;
      const n = 20000;
      for (let i = 0; i < n; i++) sum += Math.exp(r.logGamma(shape));
      // Standard error is sqrt(shape / n); allow 5 of them.
      expect(sum / n).to.be.closeTo(shape, 5 * Math.sqrt(shape / n));
    }
    for (const alpha of [0.01, 1, 100]) {
      const p = r.dirichlet(alpha, 6);
      expect(p.reduce((a, b) => a + b, 0)).to.be.closeTo(1, 1e-12);
      expect(p.every((x) => x >= 0 && Number.isFinite(x))).to.equal(true);
    }
  });

  it('int(n) is uniform enough: every value hit, no value far off', () => {
    const r = new Prng(9);
    const counts = new Array(7).fill(0);
    for (let i = 0; i < 70000; i++) counts[r.int(7)]++;
    for (const c of counts) expect(c).to.be.closeTo(10000, 500);
  });
});
