// Shared test fixtures: dev accounts, plain block builders and fast-check arbitraries of protocol calls.
import fc from 'fast-check';
import {
  deriveNetworkId,
  encodePayload,
  type ChainBlock,
  type ChainCall,
  type ChainExtrinsic,
  type FedtuneCall,
  type Hex32,
  type ProposeRound,
} from '../../pallet-bindings/index.ts';

export const ALICE = '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY';
export const BOB = '5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty';
export const CHARLIE = '5FLSigC9HGRKVhB9FiEo4Y3koPsNmBmLJbpXg2mp1hXcS59Y';
export const DAVE = '5DAAnrj7VHTznn2AWBemMuyBwZWs6FNFjdyVXUeYum3PTXFy';
export const EVE = '5HGjWAeFDfFCWPsjFQdVV2Msvz2XtMktvgocEZcCj68kUMaw';
export const FERDIE = '5CiPPseXPECbkjWCa6MnjNokrgYjMqmKndv2rSnekmSK2DjL';
export const ACCOUNTS = [ALICE, BOB, CHARLIE, DAVE, EVE, FERDIE];

export const hex32 = (byte: number): Hex32 => `0x${byte.toString(16).padStart(2, '0').repeat(32)}` as Hex32;
export const blockHash = (n: number): string => `0x${n.toString(16).padStart(64, '0')}`;

/** The id the reducer gives a network created by the first remark of extrinsic `ext` in block `n`. */
export const networkAt = (n: number, ext = 0, call = 0): Hex32 => deriveNetworkId(blockHash(n), ext, call);

export const remark = (data: Uint8Array, ok = true): ChainCall => ({ kind: 'remark', data, ok });
export const call = (network: Hex32 | null, c: FedtuneCall, ok = true): ChainCall =>
  remark(encodePayload({ network, call: c }), ok);
export const ext = (index: number, signer: string | null, c: ChainCall, ok = true): ChainExtrinsic => ({
  index,
  signer,
  ok,
  call: c,
});
export const block = (number: number, extrinsics: ChainExtrinsic[]): ChainBlock => ({
  number,
  hash: blockHash(number),
  parentHash: blockHash(number - 1),
  extrinsics,
});
/** A block whose extrinsics are single protocol calls, in order: [signer, network, call]. */
export const callsBlock = (number: number, calls: [string, Hex32 | null, FedtuneCall][]): ChainBlock =>
  block(
    number,
    calls.map(([signer, network, c], i) => ext(i, signer, call(network, c))),
  );

export const createCall = (members = [ALICE, BOB, CHARLIE], votingPeriod = 3): FedtuneCall => ({
  type: 'createNetwork',
  name: 'test-net',
  members,
  quorum: { numerator: 2, denominator: 3 },
  votingPeriod,
  coordinators: [ALICE],
});

export const datasetCall = (root: Hex32): FedtuneCall => ({
  type: 'registerDataset',
  name: 'moby-dick',
  root,
  records: 100,
  shards: 4,
  bytes: 12345,
  license: 'CC0-1.0',
  source: 'gutenberg',
  tokenizer: 'byte-v1',
  manifestUri: 'http://127.0.0.1:8080/manifest.json',
});

export const roundFields = (dataset: Hex32, overrides: Partial<ProposeRound> = {}): ProposeRound => ({
  kind: 'Pretrain',
  baseCheckpoint: null,
  dataset,
  model: { config: '{"layers":2,"dim":64}' },
  hyperParams: {
    localSteps: 10,
    batchSize: 8,
    learningRate: 0.001,
    optimiser: 'adamw',
    fedProxMu: 0,
    aggregator: 'fedavg',
    aggregatorOptions: '{}',
    updateEncoding: 'dense',
  },
  rounds: 2,
  minWorkers: 1,
  maxWorkers: 4,
  roundDeadline: 600,
  rewardPerRound: '1000000000000',
  ...overrides,
});

// ---- arbitraries ----------------------------------------------------------------------------------

const account = fc.constantFrom(...ACCOUNTS);
const smallHex = fc.integer({ min: 1, max: 4 }).map(hex32);
const text = fc.string({ maxLength: 12 });
const float = fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => (x === 0 ? 0 : x));
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const small = fc.integer({ min: 0, max: 6 });
const u53 = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
/** Mostly valid failure codes, sometimes not (lower case, too long, empty): the reducer refuses those. */
const failureCode = fc.oneof(
  fc.constantFrom('E_AGGREGATE_MISMATCH', 'E_WORK_MISMATCH', 'E_EVAL_MISMATCH'),
  fc.constantFrom('', 'e_lower', `E_${'X'.repeat(31)}`),
);

export const arbCall: fc.Arbitrary<FedtuneCall> = fc.oneof(
  fc.record({
    type: fc.constant('createNetwork' as const),
    name: text,
    members: fc.uniqueArray(account, { maxLength: 4 }),
    quorum: fc.record({
      numerator: fc.integer({ min: 0, max: 4 }),
      denominator: fc.integer({ min: 0, max: 4 }),
    }),
    votingPeriod: fc.integer({ min: 0, max: 4 }),
    coordinators: fc.array(account, { maxLength: 2 }),
  }),
  fc.record({
    type: fc.constant('registerDataset' as const),
    name: text,
    root: smallHex,
    records: u53,
    shards: fc.integer({ min: 0, max: 8 }),
    bytes: u53,
    license: text,
    source: text,
    tokenizer: text,
    manifestUri: text,
  }),
  fc.record({
    type: fc.constant('registerWorker' as const),
    capabilities: fc.record({ backend: text, device: text, memoryBytes: u53 }),
    endpoint: fc.option(text, { nil: null }),
  }),
  fc.constant({ type: 'deregisterWorker' as const }),
  fc.record({
    type: fc.constant('proposeRound' as const),
    kind: fc.constantFrom('Pretrain' as const, 'Finetune' as const),
    baseCheckpoint: fc.option(smallHex, { nil: null }),
    dataset: smallHex,
    model: fc.oneof(fc.record({ config: text }), fc.record({ hash: smallHex })),
    hyperParams: fc.record({
      localSteps: u32,
      batchSize: u32,
      learningRate: float,
      optimiser: text,
      fedProxMu: float,
      aggregator: text,
      aggregatorOptions: text,
      updateEncoding: text,
    }),
    rounds: fc.integer({ min: 0, max: 3 }),
    minWorkers: fc.integer({ min: 0, max: 3 }),
    maxWorkers: fc.integer({ min: 0, max: 3 }),
    roundDeadline: u32,
    rewardPerRound: fc.bigInt(0n, 2n ** 128n - 1n).map(String),
  }),
  fc.record({
    type: fc.constant('proposeMembership' as const),
    action: fc.constantFrom(
      'Add' as const,
      'Remove' as const,
      'AddCoordinator' as const,
      'RemoveCoordinator' as const,
    ),
    account,
  }),
  fc.record({ type: fc.constant('vote' as const), proposal: small, aye: fc.boolean() }),
  fc.record({ type: fc.constant('openRound' as const), proposal: small, coordinatorEndpoint: text }),
  fc.record({
    type: fc.constant('finalizeRound' as const),
    proposal: small,
    round: fc.integer({ min: 0, max: 3 }),
    checkpoint: fc.record({ id: smallHex, bytes: u53, uri: text }),
    updatesRoot: smallHex,
    contributors: fc.array(fc.record({ account, samples: u53, shards: fc.array(u32, { maxLength: 3 }) }), {
      maxLength: 3,
    }),
    datasetShardsRoot: smallHex,
    metrics: fc.record({
      trainLoss: float,
      evalLoss: float,
      extra: fc.array(fc.record({ name: text, value: float }), { maxLength: 2 }),
    }),
  }),
  fc.record({
    type: fc.constant('attest' as const),
    checkpoint: smallHex,
    evalLoss: float,
    verdict: fc.boolean(),
  }),
  fc.record({ type: fc.constant('failRound' as const), proposal: small, reason: text }),
  fc.record({
    type: fc.constant('attest' as const),
    checkpoint: smallHex,
    evalLoss: float,
    verdict: fc.constant(false),
    code: failureCode,
  }),
  fc.record({
    type: fc.constant('dispute' as const),
    proposal: small,
    round: fc.integer({ min: 0, max: 3 }),
    accused: account,
    code: failureCode,
    evidence: smallHex,
  }),
  fc.record({ type: fc.constant('upholdDispute' as const), dispute: fc.integer({ min: 0, max: 3 }) }),
);
