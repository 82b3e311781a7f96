// Public face of coordinator/: the round engine (startCoordinator), its websocket server and its journal.
export {
  CoordinatorError,
  startCoordinator,
  type Coordinator,
  type CoordinatorEvent,
  type CoordinatorOptions,
} from './engine.ts';
export {
  DEFAULT_LIMITS,
  startCoordinatorServer,
  type CoordinatorServer,
  type CoordinatorServerOptions,
  type ServerLimits,
  type UploadedUpdate,
} from './server.ts';
export { JournalError, openJournal, type Journal } from './journal.ts';
