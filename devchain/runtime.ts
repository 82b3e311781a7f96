// What devnets learn about one runtime, worked out once instead of once per chain: in one process its metadata, type
// registry and the metadata decorated for storage keys and calls; across processes (a cache folder) its metadata, slot
// duration and version.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Block } from '@acala-network/chopsticks-core';
import type { HexString } from '@polkadot/util/types';
import type { Logger } from 'pino';
import type { ChopsticksCore } from './chopsticks.ts';

/** A runtime as the chains that run it see it: everything chopsticks builds its registry from. */
export interface Runtime {
  /** The chain spec's id and properties (the registry's chain and properties) and the runtime's code. */
  spec: { id: string; properties: Record<string, unknown> };
  code: HexString;
}

type Shared = Pick<Block, 'metadata' | 'registry' | 'meta'>;
const SHARED: readonly (keyof Shared)[] = ['metadata', 'registry', 'meta'];
const byRuntime = new Map<string, Shared>();
const ids = new WeakMap<Runtime, string>();
/** Cache files known to hold all there is to keep. */
const complete = new Set<string>();

/** What the cache folder keeps per runtime: `<id>.json`, the id a SHA-256 of everything in `Runtime`. */
interface Saved {
  id: string;
  metadata: HexString;
  /** Aura's slot duration (chopsticks asks the runtime for it before block 1's timestamp and slot). */
  slotDuration?: number;
  /** The runtime's version as chopsticks' `getRuntimeVersion` gives it (about 0.9 CPU-s of the executor to read). */
  runtimeVersion?: RuntimeVersion;
}

/** chopsticks' runtime version: names decoded, the APIs as [id, version] pairs. */
interface RuntimeVersion {
  specName: string;
  implName: string;
  specVersion: number;
  apis: [string, number][];
  [field: string]: unknown;
}

function isRuntimeVersion(value: unknown): value is RuntimeVersion {
  const v = value as Partial<RuntimeVersion> | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.specName === 'string' &&
    typeof v.implName === 'string' &&
    Number.isInteger(v.specVersion) &&
    Array.isArray(v.apis) &&
    v.apis.every(
      (api) =>
        Array.isArray(api) &&
        typeof api[0] === 'string' &&
        /^0x[0-9a-f]{16}$/.test(api[0]) &&
        Number.isInteger(api[1]),
    )
  );
}

function idOf(runtime: Runtime): string {
  let id = ids.get(runtime);
  if (id === undefined) {
    const hash = createHash('sha256').update(JSON.stringify(runtime.spec)).update('\n').update(runtime.code);
    id = hash.digest('hex');
    ids.set(runtime, id);
  }
  return id;
}

function readSaved(file: string, id: string): Saved | null {
  try {
    const saved = JSON.parse(readFileSync(file, 'utf8')) as Partial<Saved>;
    if (saved.id !== id || typeof saved.metadata !== 'string' || !/^0x[0-9a-f]+$/.test(saved.metadata))
      return null;
    const slot = saved.slotDuration;
    if (slot !== undefined && !(Number.isInteger(slot) && slot > 0)) return null;
    const version = saved.runtimeVersion;
    if (version !== undefined && !isRuntimeVersion(version)) return null;
    return {
      id,
      metadata: saved.metadata as HexString,
      ...(slot === undefined ? {} : { slotDuration: slot }),
      ...(version === undefined ? {} : { runtimeVersion: version }),
    };
  } catch {
    return null;
  }
}

/** Holds all a cache file keeps: nothing is left to add to it. */
const isComplete = (saved: Saved) => saved.slotDuration !== undefined && saved.runtimeVersion !== undefined;

/** Written whole or not at all: a temporary file renamed over the old one. */
function writeSaved(file: string, saved: Saved): void {
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(temporary, JSON.stringify(saved));
    renameSync(temporary, file);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}

export interface SharedRuntime {
  /** Keeps what this chain learned in the cache folder, if there is one and it lacked it. Never throws. */
  save(): Promise<void>;
}

/**
 * chopsticks works the registry out for a chain's first block, lazily, behind three getters: a runtime task
 * (`Metadata_metadata`), a TypeRegistry loaded with that metadata and the runtime's version, and `expandMetadata`,
 * together about 0.35 s of the main thread besides the task. Every later block takes the parent's. So the first chain
 * on a runtime keeps its first block's promises here, and each later chain's first block gets them as own properties,
 * which shadow chopsticks' getters (a block whose storage diff changes `:code` works out its own, as before). The
 * registry and the decorated metadata are only read once built, so chains may share them. chopsticks' registry has no
 * registered types and no extra signed extensions here, so `runtime` names all it is built from.
 *
 * With a cache folder, a process's first chain on a runtime takes the metadata from there instead of a runtime task,
 * and Aura's slot duration and the runtime's version too (put into chopsticks' own memos, `getAuraSlotDuration` and
 * `getRuntimeVersion`, lodash memoizes keyed by the code, as each is another call to the executor); all three are
 * functions of the code alone.
 */
export function shareRuntime(
  core: ChopsticksCore,
  first: Block,
  runtime: Runtime,
  cacheDir: string | null,
  logger: Logger,
): SharedRuntime {
  const id = idOf(runtime);
  const known = byRuntime.get(id);
  const file = cacheDir === null ? null : join(cacheDir, `${id}.json`);
  const saved = known || file === null || complete.has(file) ? null : readSaved(file, id);
  if (file !== null && saved && isComplete(saved)) complete.add(file);
  if (known) {
    for (const name of SHARED) Object.defineProperty(first, name, { value: known[name], configurable: true });
  } else {
    if (saved) {
      Object.defineProperty(first, 'metadata', {
        value: Promise.resolve(saved.metadata),
        configurable: true,
      });
      if (saved.slotDuration !== undefined && !core.getAuraSlotDuration.cache.has(runtime.code))
        core.getAuraSlotDuration.cache.set(runtime.code, Promise.resolve(saved.slotDuration));
      if (saved.runtimeVersion !== undefined && !core.getRuntimeVersion.cache.has(runtime.code))
        core.getRuntimeVersion.cache.set(
          runtime.code,
          Promise.resolve(structuredClone(saved.runtimeVersion)),
        );
    }
    const shared: Shared = { metadata: first.metadata, registry: first.registry, meta: first.meta };
    byRuntime.set(id, shared);
    // A runtime that failed is worked out afresh next time; the chain that asked sees the error itself.
    Promise.all(SHARED.map((name) => shared[name])).catch(() => {
      if (byRuntime.get(id) === shared) byRuntime.delete(id);
    });
  }
  return {
    async save() {
      if (file === null || complete.has(file)) return;
      try {
        const remembered = async (memo: { has(key: unknown): boolean; get(key: unknown): unknown }) =>
          memo.has(runtime.code) ? await memo.get(runtime.code) : undefined;
        const slotDuration = (await remembered(core.getAuraSlotDuration.cache)) as number | undefined;
        const version = await remembered(core.getRuntimeVersion.cache);
        const saved: Saved = {
          id,
          metadata: await first.metadata,
          ...(slotDuration === undefined ? {} : { slotDuration }),
          ...(isRuntimeVersion(version) ? { runtimeVersion: version } : {}),
        };
        writeSaved(file, saved);
        if (isComplete(saved)) complete.add(file);
      } catch (error) {
        logger.debug({ err: error, file }, 'could not keep what the runtime said in the cache folder');
      }
    },
  };
}
