/**
 * Indexes a model's sidecar asks for (`"autoIndex": ["<dataset>", …]`), built in the background
 * at start-up and when a model is dropped in or replaced: so a fresh clone's default model has its
 * top-9 ready without a step. Calling it again starts nothing for an index built or being built.
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
