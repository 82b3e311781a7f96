// Public face of worker/: the trainer's runtime (runWorker), its connection to a coordinator, and task execution.
export {
  WorkerError,
  connectWorker,
  type Signer,
  type UploadParameters,
  type WorkerConnection,
  type WorkerConnectionOptions,
} from './connection.ts';
export {
  runWorker,
  type Receipt,
  type ReceiptChain,
  type RunWorkerOptions,
  type RunningWorker,
  type WorkerEvent,
} from './runner.ts';
export {
  fetchBaseCheckpoint,
  parseTask,
  trainTask,
  verifiedShardRecords,
  type LocalHyperparams,
  type ParsedTask,
  type TrainTaskResult,
} from './task.ts';
export {
  ResidualBook,
  cloneTopKState,
  isTopK,
  toDelta,
  updatePayload,
  type UpdatePayload,
} from './payload.ts';
export {
  REPRODUCIBLE_FLAVOURS,
  WORK_TOLERANCE,
  chainRounds,
  compareWork,
  reexecuteChain,
  reexecuteTask,
  type ReexecuteParameters,
  type Reexecution,
  type WorkComparison,
} from './reexecute.ts';
export { reexecuteContribution } from './contribution.ts';
