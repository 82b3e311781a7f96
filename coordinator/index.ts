// coordinator/: the round engine and its worker server, journal and metrics — what the CLI, the demo and benches use.
export { startCoordinator, type Coordinator, type CoordinatorOptions } from './engine.ts';
export type { CoordinatorEvent } from './events.ts';
export { CoordinatorError } from './errors.ts';
export { evaluateHeldOut } from './close.ts';
export { systemClock, type Clock } from './clock.ts';
export {
  DEFAULT_LIMITS,
  startCoordinatorServer,
  type CoordinatorServer,
  type CoordinatorServerOptions,
  type ServerLimits,
  type UploadedUpdate,
} from './server.ts';
export { JournalError, openJournal, type Journal } from './journal.ts';
export { Metrics } from './metrics.ts';
export { httpRoutes } from './http.ts';
export { publishRound, pruneUpdates, readPublication, type KeepUpdates } from './publish.ts';
export type { UpdateRecord } from './records.ts';
export { acceptCohortUpdate, noteCohort } from './parent.ts';
export { hierarchyRefusal } from './cohort-payload.ts';
