// Snapshots: the reducer's state and the block it is valid at, msgpack-encoded, so clients resume instead of replaying.
import { Packr } from 'msgpackr';
import { PalletError } from './errors.ts';
import { STATE_LAYOUT, type ProtocolState } from './state.ts';

/** Plain msgpack (no msgpackr record extension) so any msgpack library reads a snapshot. */
const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });

const SNAPSHOT_MAGIC = 'fedtune-snapshot';
const SNAPSHOT_VERSION = 1;

export interface Snapshot {
  /** The block the state is valid at: its number and hash (the state includes it). */
  blockNumber: number;
  blockHash: string;
  state: ProtocolState;
}

export function encodeSnapshot(state: ProtocolState): Uint8Array {
  if (state.blockHash === null) {
    throw new PalletError(
      'E_SNAPSHOT_EMPTY',
      'the state has folded no block yet; there is nothing to snapshot',
    );
  }
  return packr.pack({
    magic: SNAPSHOT_MAGIC,
    version: SNAPSHOT_VERSION,
    blockNumber: state.height,
    blockHash: state.blockHash,
    state,
  });
}

/** Reads a snapshot; throws E_BAD_SNAPSHOT when the bytes are not one this version wrote. */
export function decodeSnapshot(bytes: Uint8Array): Snapshot {
  let value: unknown;
  try {
    value = packr.unpack(bytes);
  } catch (cause) {
    throw new PalletError('E_BAD_SNAPSHOT', 'the snapshot is not msgpack', { cause });
  }
  const v = value as Partial<{
    magic: string;
    version: number;
    blockNumber: number;
    blockHash: string;
    state: ProtocolState;
  }>;
  if (v?.magic !== SNAPSHOT_MAGIC || v.version !== SNAPSHOT_VERSION) {
    throw new PalletError('E_BAD_SNAPSHOT', `not a fedtune snapshot of version ${SNAPSHOT_VERSION}`);
  }
  // A state of another layout (an older client's, without disputes and bars) is not resumed: the caller replays.
  if (v.state?.layout !== STATE_LAYOUT) {
    throw new PalletError(
      'E_BAD_SNAPSHOT',
      `the snapshot holds a state of layout ${String(v.state?.layout)}, this client reads layout ${STATE_LAYOUT}`,
    );
  }
  if (v.state.height !== v.blockNumber || v.state.blockHash !== v.blockHash) {
    throw new PalletError('E_BAD_SNAPSHOT', 'the snapshot header and its state disagree on the block');
  }
  return { blockNumber: v.blockNumber, blockHash: v.blockHash, state: v.state };
}
