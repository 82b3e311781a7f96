// The coordinator's HTTP routes beside /health and /metrics: dataset manifests it serves for workers, and checkpoints.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { handleCheckpointRequest, type CheckpointStore } from '../checkpoints/index.ts';
import type { DatasetManifest } from '../datasets/index.ts';

export function httpRoutes(store: CheckpointStore, manifests: ReadonlyMap<string, DatasetManifest>) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const path = (req.url ?? '/').split('?')[0]!;
    const m = /^\/datasets\/(0x[0-9a-f]{64})\/manifest$/.exec(path);
    if (!m) return handleCheckpointRequest(store, req, res);
    const manifest = manifests.get(m[1]!);
    if (!manifest) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'E_NOT_FOUND', message: `no dataset ${m[1]} here` } }));
    } else {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(manifest));
    }
    return true;
  };
}
