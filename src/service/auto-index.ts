/**
 * Indexes a model's sidecar asks for at start-up (`"autoIndex": ["<dataset>", …]`), in the
 * background: so a fresh clone's default model has its top-9 ready without a step.
 */
import type { Services } from './services';
import { log } from '../log';
import { defaultIndexLayers } from '../index/jobs';

export async function startAutoIndexes({ registry, datasets, jobs }: Services): Promise<void> {
  for (const model of registry.models.values()) {
    for (const name of model.sidecar.autoIndex ?? []) {
      const dataset = datasets.datasets.get(name);
      if (!dataset) {
        log.warn({ model: model.name, dataset: name }, 'autoIndex names a dataset that does not exist');
        continue;
      }
      const job = await jobs.start(model, dataset, defaultIndexLayers(model), 9);
      if (job.state !== 'DONE') log.info({ model: model.name, dataset: name, job: job.id }, 'building the top-9 index in the background');
    }
  }
}
