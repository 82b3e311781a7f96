// The shapes every piece of datasets/ shares: a record, a dataset.

/** One training example: a chapter, a speech, an e-mail, a line of a trainer's JSONL. */
export interface DatasetRecord {
  /** Unique within its dataset. */
  id: string;
  text: string;
  label?: string;
  /** Descriptive fields (SOTU: president, year, party). Not part of the record's hash. */
  meta?: Record<string, string | number>;
}

export interface Dataset {
  name: string;
  /** In canonical order: a record's index is its position here. */
  records: DatasetRecord[];
  /** The declared label set, in label-index order (classification label i is labels[i]). */
  labels?: string[];
  /** SPDX identifier or free text, from the source's own metadata. */
  license: string;
  source: string;
  description: string;
  /** The `meta` field that names a record's natural owner (SOTU: president), used by the partition scheme. */
  partitionKey?: string;
}
