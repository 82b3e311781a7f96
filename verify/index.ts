// verify/: how a round's checkpoint is derived from published work, and the checks that let anyone repeat it.
export {
  deriveAggregate,
  evaluateHeldOut,
  leafOrder,
  noiseSeed,
  parseUpdateEncoding,
  proposalFit,
  proposalSeed,
  proposalSpec,
  proposalStrategy,
  roundCheckpoint,
  seededBase,
  type DerivedAggregate,
  type PublishedUpdate,
  type UpdateEncoding,
} from './derive.ts';
export {
  MAX_PUBLISHED_UPDATES,
  PUBLICATION_VERSION,
  PublicationError,
  parsePublication,
  type PublishedUpdateRecord,
  type RoundPublication,
} from './publication.ts';
export { taskFrame, taskSamples, taskSeed } from './task.ts';
export { EVAL_TOLERANCE } from './checkpoint.ts';
export { pickForRecompute } from './reexecute.ts';
export { verifyRound } from './round.ts';
export {
  COHORT_CODEC,
  COHORTS_METRIC,
  CohortError,
  checkCohortAggregates,
  checkCustody,
  cohortAggregate,
  decodeCohortPayload,
  encodeCohortPayload,
  hexBytes,
  hierarchyRefusal,
  isCohortPayload,
  isHierarchical,
  signedBy,
  type CohortHeader,
  type CohortMember,
} from './cohort.ts';
export {
  VerifyError,
  VerifyFailure,
  type Reexecute,
  type ReexecuteInput,
  type VerifyCode,
  type VerifyReport,
  type VerifyRoundParams,
  type VerifyStep,
  type WorkCheck,
} from './types.ts';
