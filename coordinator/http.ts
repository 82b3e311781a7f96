// The coordinator's HTTP routes beside /health and /metrics: dataset manifests it serves for workers, checkpoints, and
// each round's publication (its record at /rounds/<proposal>/<round>, update payloads and states at /blobs/<sha256>).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { handleBlobRequest, handleCheckpointRequest, type CheckpointStore } from '../checkpoints/index.ts';
import type { DatasetManifest } from '../datasets/index.ts';
import { readPublication } from './publish.ts';

const notFound = (res: ServerResponse, message: string) => {
  res.writeHead(404, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { code: 'E_NOT_FOUND', message } }));
};

export function httpRoutes(store: CheckpointStore, manifests: ReadonlyMap<string, DatasetManifest>) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const path = (req.url ?? '/').split('?')[0]!;
    const dataset = /^\/datasets\/(0x[0-9a-f]{64})\/manifest$/.exec(path);
    if (dataset) {
      const manifest = manifests.get(dataset[1]!);
      if (!manifest) notFound(res, `no dataset ${dataset[1]} here`);
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(manifest));
      return true;
    }
    const round = /^\/rounds\/(0|[1-9][0-9]{0,8})\/(0|[1-9][0-9]{0,8})$/.exec(path);
    if (round) {
      const bytes = await readPublication(store, Number(round[1]), Number(round[2]));
      if (!bytes) notFound(res, `no publication of round ${round[2]} of proposal ${round[1]} here`);
      else
        res
          .writeHead(200, { 'content-type': 'application/json', 'content-length': bytes.length })
          .end(req.method === 'HEAD' ? undefined : bytes);
      return true;
    }
    return (await handleCheckpointRequest(store, req, res)) || handleBlobRequest(store, req, res);
  };
}
