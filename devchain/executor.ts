// chopsticks' runtime executor, one worker thread per process: kept between devnets, holding the process open only
// while a devnet is.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createRequire } from 'node:module';
import type { MessagePort, Worker } from 'node:worker_threads';
import type { ChopsticksCore } from './chopsticks.ts';

/**
 * chopsticks starts its executor worker on the first runtime call and keeps it (and with it the process) alive until
 * `destroyWorker()`; a new one loads the executor's modules and inflates and compiles its WebAssembly again, about
 * 0.5 s of its thread and as much again of V8's compiler threads. So the worker is kept for the process's life, ref'd
 * while a devnet is open and unref'd while none is: a process whose last devnet closed still exits by itself.
 *
 * chopsticks does not hand out its `Worker`; Node announces every new one on the `worker_threads` diagnostics channel,
 * so the executor is the one worker created while `getWorker()` starts it. One more thing would hold the process open:
 * each runtime task's callbacks (storage reads) are a Comlink proxy on a MessagePort of their own, closed only when the
 * worker's garbage collector releases the proxy, seconds to minutes later (see `unrefTaskPorts`). When either cannot be
 * had (chopsticks had started its worker already, another thread began meanwhile, or Comlink is not where chopsticks'
 * core finds it), nothing is kept: the last devnet to close destroys chopsticks' worker, as before, which closes the
 * ports with it.
 */
let executor: Promise<Worker | null> | null = null;
let users = 0;

interface ComlinkTransferHandler {
  canHandle(value: unknown): boolean;
  serialize(value: unknown): [unknown, MessagePort[]];
  deserialize(value: unknown): unknown;
}
interface Comlink {
  transferHandlers: Map<string, ComlinkTransferHandler>;
  expose(value: unknown, endpoint: MessagePort): void;
}

let portsUnrefd = false;

/**
 * Comlink's `proxy` transfer handler, as chopsticks-core's copy of Comlink has it, with one change: the main thread's
 * end of each task's callback port is unref'd. The port can only carry a task's callbacks while the task runs, and a
 * task runs only while its devnet is open, when the worker itself holds the process open. The replacement does what
 * Comlink's does (a MessageChannel, `expose` on one end, the other end transferred); only the `unref()` is added.
 */
function unrefTaskPorts(): boolean {
  if (portsUnrefd) return true;
  let comlink: Comlink;
  try {
    const fromHere = createRequire(import.meta.url);
    comlink = createRequire(fromHere.resolve('@acala-network/chopsticks-core'))('comlink') as Comlink;
  } catch {
    return false;
  }
  const original = comlink.transferHandlers?.get('proxy');
  if (!original || typeof comlink.expose !== 'function') return false;
  comlink.transferHandlers.set('proxy', {
    canHandle: (value) => original.canHandle(value),
    serialize(value) {
      const { port1, port2 } = new MessageChannel();
      comlink.expose(value, port1 as unknown as MessagePort);
      (port1 as unknown as MessagePort).unref();
      return [port2, [port2 as unknown as MessagePort]];
    },
    deserialize: (value) => original.deserialize(value),
  });
  portsUnrefd = true;
  return true;
}

async function startExecutor(core: ChopsticksCore): Promise<Worker | null> {
  const created: Worker[] = [];
  const onWorker = (message: unknown) => {
    const worker = (message as { worker?: Worker }).worker;
    if (worker) created.push(worker);
  };
  subscribe('worker_threads', onWorker);
  try {
    await core.getWorker();
  } finally {
    unsubscribe('worker_threads', onWorker);
  }
  if (created.length !== 1 || !unrefTaskPorts()) return null;
  const worker = created[0]!;
  worker.once('exit', () => {
    executor = null;
    // chopsticks would keep handing out the dead worker; forgetting it is all that is left to do.
    core.destroyWorker().catch(() => undefined);
  });
  return worker;
}

/** A devnet starts: the executor worker (started if need be) holds the process open. Pair with releaseExecutor. */
export async function acquireExecutor(core: ChopsticksCore): Promise<void> {
  users++;
  executor ??= startExecutor(core).catch((error: unknown) => {
    executor = null;
    throw error;
  });
  try {
    (await executor)?.ref();
  } catch (error) {
    users--;
    throw error;
  }
}

/** A devnet closed: with none left the worker stays, but no longer holds the process open. */
export async function releaseExecutor(core: ChopsticksCore): Promise<void> {
  if (--users > 0) return;
  const worker = await executor?.catch(() => null);
  if (worker) {
    worker.unref();
    return;
  }
  executor = null;
  await core.destroyWorker();
}
