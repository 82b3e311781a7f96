// What the devnets in one process share about one runtime: its metadata, its type registry and the metadata decorated
// for storage keys and calls, worked out once per runtime instead of once per chain.
import type { Block } from '@acala-network/chopsticks-core';

type Shared = Pick<Block, 'metadata' | 'registry' | 'meta'>;
const SHARED: readonly (keyof Shared)[] = ['metadata', 'registry', 'meta'];
const byRuntime = new Map<string, Shared>();

/**
 * chopsticks works these out for a chain's first block, lazily, behind three getters: a runtime task
 * (`Metadata_metadata`), a TypeRegistry loaded with that metadata (the chain's name and properties, the runtime's
 * version) and `expandMetadata`, together about 0.35 s of the main thread besides the task. Every later block takes
 * the parent's. So the first chain on a runtime keeps its first block's promises here, and each later chain's first
 * block gets them as own properties, which shadow chopsticks' getters (a block whose storage diff changes `:code`
 * works out its own, as before).
 *
 * `runtime` must name everything they are built from: the chain spec's id and properties and the runtime's code
 * (chopsticks' registry has no registered types and no extra signed extensions here). The registry and the decorated
 * metadata are only read once built, so chains may share them.
 */
export function shareRuntime(first: Block, runtime: string): void {
  const known = byRuntime.get(runtime);
  if (known) {
    for (const name of SHARED) Object.defineProperty(first, name, { value: known[name], configurable: true });
    return;
  }
  const shared: Shared = { metadata: first.metadata, registry: first.registry, meta: first.meta };
  byRuntime.set(runtime, shared);
  // A runtime that failed is worked out afresh next time; the chain that asked sees the error itself.
  Promise.all(SHARED.map((name) => shared[name])).catch(() => {
    if (byRuntime.get(runtime) === shared) byRuntime.delete(runtime);
  });
}
