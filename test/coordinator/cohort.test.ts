// The parent's checks of a sub-coordinator's cohort update (coordinator/parent.ts) and the strategies hierarchy runs:
// a cohort update is refused, with its code, whenever a member, its signature, its samples, its shards or the cohort
// root is not what the chain and the sub's task allow.
import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { createStrategy, encodeUpdate, type NamedTensor } from '../../aggregation/index.ts';
import { acceptCohortUpdate, hierarchyRefusal, noteCohort } from '../../coordinator/index.ts';
import {
  cohortLeafHash,
  fromHex,
  signerFromSeed,
  toHex,
  updateLeafHash,
  updatesTree,
  verifyCohortReceipt,
  type KeyringPair,
  type NetworkState,
} from '../../pallet-bindings/index.ts';
import { updateMessage } from '../../proto/index.ts';
import { decodeCohortPayload, encodeCohortPayload, type CohortMember } from '../../verify/index.ts';

const NETWORK = `0x${'ab'.repeat(32)}`;
const BASE = `0x${'cd'.repeat(32)}`;
const sha = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest());
const weights = (v: number): NamedTensor[] => [{ name: 'w', shape: [4], data: new Float32Array(4).fill(v) }];

describe('coordinator: cohort updates at the parent', () => {
  let sub: KeyringPair;
  let other: KeyringPair;
  let bob: KeyringPair;
  let charlie: KeyringPair;
  let dave: KeyringPair;
  let net: NetworkState;

  before(async () => {
    [sub, other, bob, charlie, dave] = await Promise.all(
      ['//Eve', '//SubB', '//Bob', '//Charlie', '//Dave'].map((s) => signerFromSeed(s)),
    );
    const worker = { capabilities: {}, endpoint: null };
    net = {
      coordinators: [sub.address, other.address],
      workers: { [bob.address]: worker, [charlie.address]: worker },
      barredWorkers: {},
      barredCoordinators: {},
    } as unknown as NetworkState;
  });

  /** A member's update as its worker signs it for the sub-coordinator. */
  function member(w: KeyringPair, shards: number[], value: number, samples = 12): CohortMember {
    const payload = encodeUpdate(weights(value), { codec: 'dense' });
    const payloadSha256 = sha(payload);
    const signature = w.sign(
      updateMessage({
        network: NETWORK,
        coordinator: sub.address,
        proposal: 0,
        round: 0,
        samples,
        payloadBytes: payload.length,
        base: BASE,
        codec: 'dense',
        shards,
        payloadSha256,
      }),
    );
    return {
      account: w.address,
      taskId: `0-0-0-${shards[0]}`,
      samples,
      shards,
      trainLoss: 3,
      payloadSha256: toHex(payloadSha256),
      payloadBytes: payload.length,
      signature: `0x${Buffer.from(signature).toString('hex')}`,
    };
  }

  const rootOf = (members: CohortMember[]) =>
    updatesTree(
      members.map((m) => ({
        account: m.account,
        updateHash: updateLeafHash({ ...m, proposal: 0, round: 0, payloadSha256: fromHex(m.payloadSha256) }),
      })),
    ).root;

  function attempt(
    members: CohortMember[],
    options: { root?: string; samples?: number; spec?: unknown; accepted?: Map<string, unknown> } = {},
  ) {
    const payload = encodeCohortPayload(
      { root: options.root ?? rootOf(members), codec: 'dense', members, source: 'http://sub' },
      encodeUpdate(weights(0.5), { codec: 'dense' }),
    );
    const strategy = createStrategy({ name: 'fedavg', options: { clip: null } }, weights(0));
    strategy.configureRound(0);
    const task = { account: sub.address, taskId: '0-0-0-0', shards: [0, 2, 4] };
    return acceptCohortUpdate({
      assignment: {
        proposal: 0,
        round: 0,
        attempt: 0,
        slots: 2,
        shardCount: 6,
        tasks: new Map([[sub.address, task]]),
        released: new Set(),
      },
      closing: false,
      accepted: options.accepted ?? new Map(),
      maxWorkers: 4,
      samples: 12,
      strategy,
      spec: options.spec ?? { name: 'fedavg', options: { clip: null } },
      codec: 'dense',
      maxValues: 4,
      network: NETWORK,
      net,
      base: BASE,
      update: {
        account: sub.address,
        payload,
        begin: {
          taskId: '0-0-0-0',
          proposal: 0,
          round: 0,
          base: BASE,
          codec: 'cohort',
          payloadBytes: payload.length,
          payloadSha256: sha(payload),
          samples: options.samples ?? members.length * 12,
          shards: [0, 2, 4],
          trainLoss: 3,
          signature: new Uint8Array(64),
        },
      },
    });
  }

  const codeOf = (v: ReturnType<typeof attempt>) => (v.ok ? 'ok' : v.code);

  it('accepts a cohort whose members, signatures, samples, shards and root check out; its leaf commits the root', () => {
    const members = [member(bob, [0], 0.25), member(charlie, [2, 4], 0.75)];
    const verdict = attempt(members);
    expect(codeOf(verdict)).to.equal('ok');
    if (!verdict.ok) return;
    expect(verdict.record.samples).to.equal(24);
    const leaf = cohortLeafHash({
      proposal: 0,
      round: 0,
      account: sub.address,
      samples: 24,
      payloadSha256: verdict.record.payloadSha256,
      cohortRoot: fromHex(rootOf(members)),
    });
    expect(toHex(verdict.record.updateHash)).to.equal(toHex(leaf));
    expect(decodeCohortPayload(verdict.record.payload).header.members).to.have.length(2);
  });

  it('refuses a forged member signature, a wrong root, samples not derived, foreign shards, unregistered members', () => {
    const good = () => [member(bob, [0], 0.25), member(charlie, [2], 0.75)];
    const forged = good();
    forged[1] = { ...forged[1]!, signature: good()[0]!.signature };
    expect(codeOf(attempt(forged))).to.equal('E_BAD_SIGNATURE');
    expect(codeOf(attempt(good(), { root: `0x${'00'.repeat(32)}` }))).to.equal('E_COHORT_ROOT');
    expect(codeOf(attempt(good(), { samples: 30 }))).to.equal('E_SAMPLES_MISMATCH');
    expect(codeOf(attempt([member(bob, [0], 0.25, 24)]))).to.equal('E_SAMPLES_MISMATCH');
    expect(codeOf(attempt([member(bob, [1], 0.25)]))).to.equal('E_WRONG_SHARDS');
    expect(codeOf(attempt([member(bob, [0], 0.25), member(charlie, [0], 0.75)]))).to.equal('E_WRONG_SHARDS');
    expect(codeOf(attempt([member(dave, [0], 0.25)]))).to.equal('E_COHORT_MEMBER');
    expect(codeOf(attempt([], { root: `0x${'00'.repeat(32)}` }))).to.equal('E_COHORT_EMPTY');
  });

  it("bounds a cohort header's hostile fields before anything uses them (E_COHORT_MALFORMED)", () => {
    const aggregate = encodeUpdate(weights(0.5), { codec: 'dense' });
    const decode = (header: Record<string, unknown>) => {
      const members = [member(bob, [0], 0.25)];
      const full = { root: rootOf(members), codec: 'dense', members, source: 'http://sub', ...header };
      try {
        decodeCohortPayload(encodeCohortPayload(full as never, aggregate));
        return 'ok';
      } catch (error) {
        return `${(error as { code: string }).code}: ${(error as Error).message}`;
      }
    };
    expect(decode({})).to.equal('ok');
    expect(decode({ members: [{ ...member(bob, [0], 0.25), account: 'x'.repeat(10_000) }] })).to.match(
      /^E_COHORT_MALFORMED: .*member 0: bad account/,
    );
    expect(decode({ members: [{ ...member(bob, [0], 0.25), trainLoss: null }] })).to.match(/bad trainLoss/);
    expect(decode({ members: [{ ...member(bob, [0], 0.25), shards: new Array(5000).fill(0) }] })).to.match(
      /bad shards/,
    );
    expect(decode({ source: 'file:///etc/passwd' })).to.match(/^E_COHORT_MALFORMED: .*source/);
    expect(decode({ source: `http://sub/${'a'.repeat(5000)}` })).to.match(/^E_COHORT_MALFORMED: .*source/);
    expect(decode({ codec: 'c'.repeat(1000) })).to.match(/^E_COHORT_MALFORMED: .*codec/);
  });

  it('refuses a worker already counted in another cohort, and strategies hierarchy is not exact for', () => {
    const accepted = new Map<string, unknown>();
    const first = attempt([member(bob, [0], 0.25)], { accepted });
    expect(codeOf(first)).to.equal('ok');
    if (first.ok) {
      accepted.set(other.address, first.record);
      noteCohort(accepted, first.record);
    }
    expect(codeOf(attempt([member(bob, [2], 0.25)], { accepted }))).to.equal('E_DUPLICATE_UPDATE');
    const median = { name: 'median', options: {} };
    expect(codeOf(attempt([member(bob, [0], 0.25)], { spec: median }))).to.equal('E_HIERARCHY_UNSUPPORTED');
    expect(hierarchyRefusal({ name: 'fedadam', options: { clip: null } })).to.equal(null);
    expect(hierarchyRefusal({ name: 'fedavg', options: {} })).to.match(/clip/);
    expect(hierarchyRefusal({ name: 'median', options: {} })).to.match(/not a weighted mean/);
  });

  it("a worker's receipt goes through its cohort root; a cohort leaf with other samples does not lead to the root", () => {
    const members = [member(bob, [0], 0.25), member(charlie, [2], 0.75)];
    const inner = updatesTree(
      members.map((m) => ({
        account: m.account,
        updateHash: updateLeafHash({ ...m, proposal: 0, round: 0, payloadSha256: fromHex(m.payloadSha256) }),
      })),
    );
    const cohort = { account: sub.address, samples: 24, payloadSha256: sha(new Uint8Array([1])) };
    const cohortRoot = fromHex(inner.root);
    const otherLeaf = { account: other.address, updateHash: sha(new Uint8Array([2])) };
    const outer = updatesTree([
      { account: sub.address, updateHash: cohortLeafHash({ ...cohort, proposal: 0, round: 0, cohortRoot }) },
      otherLeaf,
    ]);
    const check = (samples: number) =>
      verifyCohortReceipt({
        leaf: { ...members[0]!, proposal: 0, round: 0, payloadSha256: fromHex(members[0]!.payloadSha256) },
        proof: inner.proof(bob.address)!,
        cohort: { ...cohort, samples, cohortRoot },
        cohortProof: outer.proof(sub.address)!,
        updatesRoot: outer.root,
      });
    expect(check(24)).to.deep.equal({ ok: true });
    expect(check(36)).to.include({ ok: false, code: 'E_RECEIPT_PROOF' });
  });
});
