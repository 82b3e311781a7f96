// pallet-bindings: the fedtune protocol on any Substrate chain — calls and their codec, the reducer, snapshots, the chain client.
export * from './types.ts';
export * from './state.ts';
export { PalletError } from './errors.ts';
export {
  CALL_TYPES,
  FEDTUNE_TYPES,
  MAGIC,
  MAX_PAYLOAD_BYTES,
  PROTOCOL_VERSION,
  SS58_PREFIX,
  PayloadError,
  createFedtuneRegistry,
  decodePayload,
  deriveNetworkId,
  encodeCall,
  encodePayload,
  hasMagic,
  isHex32,
  toAccount,
} from './codec.ts';
export { ayesNeeded, reduceBlock, reduceBlocks } from './reducer.ts';
export { decodeSnapshot, encodeSnapshot, type Snapshot } from './snapshot.ts';
