// A sub-coordinator's cohort update (docs/rounds.md, "Hierarchical rounds"): its payload format (verify/cohort.ts),
// the cohort aggregate's definition, and which strategies may run hierarchically. Shared by coordinator/cohort.ts (the
// sub) and coordinator/parent.ts (the parent).

export {
  COHORT_CODEC,
  decodeCohortPayload,
  encodeCohortPayload,
  cohortAggregate,
  hexBytes,
  hierarchyRefusal,
  isCohortPayload,
  type CohortHeader,
  type CohortMember,
} from '../verify/index.ts';
