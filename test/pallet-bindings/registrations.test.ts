// registerWorkers: many workers registered in one extrinsic, each by its own signature, all or nothing.
import { expect } from 'chai';
import {
  MAX_REGISTRATIONS_PER_CALL,
  decodePayload,
  encodePayload,
  initialState,
  reduceBlocks,
  registerWorkersCalls,
  signRegistration,
  signerFromSeed,
  type ChainBlock,
  type FedtuneCall,
  type KeyringPair,
  type ProtocolState,
  type RegisterWorker,
  type WorkerRegistration,
} from '../../pallet-bindings/index.ts';
import { ALICE, BOB, block, call, callsBlock, createCall, ext, networkAt } from './fixtures.ts';

const NET = networkAt(1);
const OTHER = networkAt(99);
const FIELDS: RegisterWorker = {
  capabilities: { backend: 'wasm', device: 'cpu', memoryBytes: 8e9 },
  endpoint: 'ws://10.0.0.7:7400',
};
const created = () => callsBlock(1, [[ALICE, null, createCall()]]);
const workersOf = (s: ProtocolState) => Object.keys(s.networks[NET]!.workers).sort();
const codes = (s: ProtocolState) => s.audit.map((a) => a.code);
/** registerWorkers submitted by Bob in block `n`. */
const submitted = (n: number, validUntil: number, workers: WorkerRegistration[]): ChainBlock =>
  callsBlock(n, [[BOB, NET, { type: 'registerWorkers', validUntil, workers }]]);

describe('pallet-bindings registerWorkers', () => {
  let pairs: KeyringPair[];
  before(async () => {
    pairs = await Promise.all(
      Array.from({ length: MAX_REGISTRATIONS_PER_CALL + 1 }, (_, i) =>
        signerFromSeed(`//registrations-${i}`),
      ),
    );
  });

  it('registers every worker that signed, with what it declared, and not the submitter', () => {
    const consents = pairs.slice(0, 3).map((p) => signRegistration(p, NET, 10, FIELDS));
    const s = reduceBlocks(initialState(), [created(), submitted(2, 10, consents)]);
    expect(codes(s)).to.deep.equal([]);
    expect(workersOf(s)).to.deep.equal(consents.map((c) => c.account).sort());
    expect(s.networks[NET]!.workers[consents[1]!.account]).to.deep.equal({
      account: consents[1]!.account,
      ...FIELDS,
      block: 2,
    });
  });

  it('round-trips through the codec, signatures included', () => {
    const c: FedtuneCall = {
      type: 'registerWorkers',
      validUntil: 7,
      workers: pairs.slice(0, 2).map((p) => signRegistration(p, NET, 7, { ...FIELDS, endpoint: null })),
    };
    expect(decodePayload(encodePayload({ network: NET, call: c }))).to.deep.equal({ network: NET, call: c });
  });

  it('refuses the whole call when one consent is not for this registration (E_BAD_REGISTRATION_SIGNATURE)', () => {
    const good = pairs.slice(0, 2).map((p) => signRegistration(p, NET, 10, FIELDS));
    const cases: WorkerRegistration[][] = [
      // Signed for another network.
      [...good, signRegistration(pairs[2]!, OTHER, 10, FIELDS)],
      // The submitter changed the endpoint the worker declared.
      [...good, { ...signRegistration(pairs[2]!, NET, 10, FIELDS), endpoint: 'ws://evil:1' }],
      // Another worker's signature under this account.
      [
        ...good,
        {
          ...signRegistration(pairs[3]!, NET, 10, FIELDS),
          account: signRegistration(pairs[2]!, NET, 10, FIELDS).account,
        },
      ],
      // Signed for a later validUntil than the call claims.
      [...good, signRegistration(pairs[2]!, NET, 11, FIELDS)],
    ];
    for (const workers of cases) {
      const s = reduceBlocks(initialState(), [created(), submitted(2, 10, workers)]);
      expect(codes(s)).to.deep.equal(['E_BAD_REGISTRATION_SIGNATURE']);
      expect(s.audit[0]!.reason).to.include('worker 2');
      expect(workersOf(s)).to.deep.equal([]);
    }
  });

  it('refuses consents past validUntil, an account twice, none, and more than the bound', () => {
    const one = signRegistration(pairs[0]!, NET, 5, FIELDS);
    const late = reduceBlocks(initialState(), [created(), submitted(6, 5, [one])]);
    expect(codes(late)).to.deep.equal(['E_REGISTRATION_EXPIRED']);
    const onTime = reduceBlocks(initialState(), [created(), submitted(5, 5, [one])]);
    expect(workersOf(onTime)).to.deep.equal([one.account]);
    const twice = reduceBlocks(initialState(), [created(), submitted(2, 5, [one, one])]);
    expect(codes(twice)).to.deep.equal(['E_BAD_REGISTRATIONS']);
    const none = reduceBlocks(initialState(), [created(), submitted(2, 5, [])]);
    expect(codes(none)).to.deep.equal(['E_BAD_REGISTRATIONS']);
    const all = pairs.map((p) => signRegistration(p, NET, 5, FIELDS));
    const over = reduceBlocks(initialState(), [created(), submitted(2, 5, all)]);
    expect(codes(over)).to.deep.equal(['E_BAD_REGISTRATIONS']);
    expect(workersOf(over)).to.deep.equal([]);
  });

  it('splits a list into calls of at most the bound, which one batchAll registers together', () => {
    const all = pairs.map((p) => signRegistration(p, NET, 5, FIELDS));
    const calls = registerWorkersCalls(5, all);
    expect(calls.map((c) => c.workers.length)).to.deep.equal([MAX_REGISTRATIONS_PER_CALL, 1]);
    const s = reduceBlocks(initialState(), [
      created(),
      block(2, [
        ext(0, BOB, { kind: 'batch', mode: 'batchAll', ok: true, calls: calls.map((c) => call(NET, c)) }),
      ]),
    ]);
    expect(codes(s)).to.deep.equal([]);
    expect(workersOf(s)).to.have.length(pairs.length);
  });
});
