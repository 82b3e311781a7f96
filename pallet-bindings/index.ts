// pallet-bindings: the fedtune protocol on any Substrate chain — calls and their codec, the reducer, snapshots, the chain client.
export * from './types.ts';
export * from './state.ts';
export { PalletError } from './errors.ts';
export {
  MAGIC,
  MAX_PAYLOAD_BYTES,
  PROTOCOL_VERSION,
  PayloadError,
  decodePayload,
  deriveNetworkId,
  encodeCall,
  encodePayload,
  hasMagic,
  isHex32,
} from './codec.ts';
export {
  CALL_TYPES,
  FEDTUNE_TYPES,
  MAX_FAILURE_CODE_CHARS,
  SS58_PREFIX,
  createFedtuneRegistry,
  isFailureCode,
  toAccount,
  type CallVariant,
} from './scale-types.ts';
export { ayesNeeded, reduceBlock, reduceBlocks } from './reducer.ts';
export {
  LEAF_PREFIX,
  NODE_PREFIX,
  fromHex,
  leafHash,
  merkleLevels,
  merkleProof,
  merkleRoot,
  nodeHash,
  rootFromProof,
  sha256,
  toHex,
  verifyProof,
  type MerkleProof,
} from '../merkle/index.ts';
export {
  cohortLeafHash,
  updateLeafHash,
  updatesTree,
  verifyCohortReceipt,
  verifyReceipt,
  type CohortLeaf,
  type UpdateLeaf,
  type ReceiptCheck,
} from './receipts.ts';
export {
  dryRun,
  submitChecked,
  ProtocolRejection,
  type CheckedSubmission,
  type SubmitCheckedParameters,
} from './actions.ts';
export { decodeSnapshot, encodeSnapshot, type Snapshot } from './snapshot.ts';
export { reducerFingerprint, stateCacheFile, syncCached, type CachedSyncParameters } from './state-cache.ts';
export { signerFromKeyfile, signerFromSeed, type KeyringPair } from './keys.ts';
export { markOutcomes, type UtilityEvent } from './outcomes.ts';
export {
  buildCall,
  callTree,
  connect,
  fetchBlock,
  finalizedHead,
  follow,
  isCanonical,
  resumeFromSnapshot,
  syncState,
  type CallBuilders,
  type ChainClient,
  type ConnectParameters,
  type FollowParameters,
  type SyncParameters,
  type Transfer,
} from './client.ts';
export { submit, type Inclusion, type SubmitParameters } from './submit.ts';
export {
  approvedRounds,
  certifiedCheckpoints,
  getNetwork,
  getRound,
  isBarredCoordinator,
  isBarredWorker,
  isCoordinator,
  isMember,
  isWorker,
  openRounds,
  roundProposals,
} from './queries.ts';
export {
  OPEN_EXPIRY_BLOCKS,
  ROUND_EXPIRY_BLOCKS_PER_SECOND,
  ROUND_EXPIRY_SLACK_BLOCKS,
  openExpiresAfter,
  roundExpiresAfter,
} from './decide.ts';
export { checkRewards, rewardShares } from './rewards.ts';
export {
  MAX_REGISTRATIONS_PER_CALL,
  REGISTRATION_TAG,
  registerWorkersCalls,
  registrationMessage,
  signRegistration,
} from './registrations.ts';
