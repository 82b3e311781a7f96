// What devnets learn about one runtime, worked out once instead of once per chain: in one process its metadata, type
// registry and the metadata decorated for storage keys and calls; across processes (a cache folder) its metadata and
// slot duration.
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
    return {
      id,
      metadata: saved.metadata as HexString,
      ...(slot === undefined ? {} : { slotDuration: slot }),
    };
  } catch {
    return null;
  }
}

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
 * and Aura's slot duration too (put into chopsticks' own memo of `getAuraSlotDuration`, a lodash memoize keyed by
 * the code, as the slot is another task); both are functions of the code alone.
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
  if (file !== null && saved?.slotDuration !== undefined) complete.add(file);
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
        const memo = core.getAuraSlotDuration.cache;
        const slotDuration = memo.has(runtime.code)
          ? ((await memo.get(runtime.code)) as number | undefined)
          : undefined;
        writeSaved(file, {
          id,
          metadata: await first.metadata,
          ...(slotDuration === undefined ? {} : { slotDuration }),
        });
        if (slotDuration !== undefined) complete.add(file);
      } catch (error) {
        logger.debug({ err: error, file }, 'could not keep what the runtime said in the cache folder');
      }
    },
  };
}
