// The size of each built-in corpus as fedtune loads it, recorded per package version, so that listing the corpora
// needs no corpus load (loading SOTU and SpamAssassin parses about 43 MB of text).
import { builtinInfo, type BuiltinName } from './sources.ts';

export interface BuiltinStats {
  /** Records after loading (chapters, speeches, messages). */
  records: number;
  /** UTF-8 bytes of the records' texts. */
  bytes: number;
}

/** Measured with loadBuiltin; test/datasets/builtin-stats.test.ts checks them against the installed packages. */
const STATS: Record<BuiltinName, BuiltinStats & { version: string }> = {
  'moby-dick': { version: '0.2.3', records: 139, bytes: 1_216_302 },
  sotu: { version: '0.2.3', records: 233, bytes: 10_761_202 },
  'spam-assassin': { version: '0.2.3', records: 6046, bytes: 32_541_535 },
};

/** The recorded size of a built-in corpus, or null when the installed package is another version than measured. */
export function builtinStats(name: BuiltinName): BuiltinStats | null {
  const s = STATS[name];
  if (builtinInfo(name).version !== s.version) return null;
  return { records: s.records, bytes: s.bytes };
}
