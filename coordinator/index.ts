// coordinator/: the round engine and its worker server, journal and metrics — what the CLI, the demo and benches use.
export { startCoordinator, type Coordinator, type CoordinatorOptions } from './engine.ts';
export type { CoordinatorEvent } from './events.ts';
export { CoordinatorError } from './errors.ts';
export { evaluateHeldOut } from './close.ts';
export { systemClock, type Clock } from './clock.ts';
export {
  startCoordinatorServer,
  DEFAULT_LIMITS,
  type CoordinatorServer,
  type ServerLimits,
} from './server.ts';
export { Metrics } from './metrics.ts';
