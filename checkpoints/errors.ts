// The error type of the checkpoint store, server and downloader: a stable code and a message naming what failed.
import { CodedError } from '../errors/index.ts';

export class CheckpointError extends CodedError {}
