/** /datasets/<dataset>/<file>: the original images of a dataset (only files the dataset lists). */
import path from 'node:path';
import { Router } from 'express';
import { DatasetRegistry } from '../registry/datasets';

const TYPES: Record<string, string> = { '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.webp': 'image/webp' };

export function datasetRoutes(datasets: DatasetRegistry): Router {
  const router = Router();
  router.get('/datasets/:dataset/:file', (req, res) => {
    const dataset = datasets.datasets.get(String(req.params.dataset));
    const file = String(req.params.file);
    if (!dataset || !dataset.byName.has(file)) {
      res.status(404).type('text/plain').send('no such dataset image');
      return;
    }
    res.set({ 'Content-Type': TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream', 'Cache-Control': 'public, max-age=3600' });
    res.send(datasets.read(dataset, file));
  });
  return router;
}
