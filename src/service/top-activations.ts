/**
 * Index jobs and the top-k of each filter over a dataset (ZF Fig. 2): starting a job, the rows
 * of a finished index, and the grid of a page of filters' top projections beside their patches.
 */
import { ApiError, badInput } from '../errors';
import { defaultIndexLayers, JobInfo } from '../index/jobs';
import { Box } from '../images/maps';
import { TopRow } from '../index/store';
import { SourceImage } from '../inference';
import type { Layer, Model, Unit } from '../model';
import type { Dataset } from '../registry/datasets';
import { toGlobalId } from '../ids';
import { datasetImage } from './images';
import { findLayer } from './lookup';
import { projectUnit } from './projection';
import type { Scope } from './scope';
import type { Services } from './services';
import { inputBox, originalBox, topGridUrl } from './views';

function checkK(k: number): void {
  if (!Number.isInteger(k) || k < 1 || k > 100) throw badInput(`k must be between 1 and 100, got ${k}`, { argument: 'k' });
}

/** Starts (or finds) the index of `layers` (default: every Conv and Relu) of `model` over `dataset`, keeping the top `k`. */
export async function buildIndex({ jobs }: Services, model: Model, dataset: Dataset, layers: string[] | undefined, k: number): Promise<JobInfo> {
  checkK(k);
  const chosen = layers ?? defaultIndexLayers(model);
  if (chosen.length === 0) throw badInput('give at least one layer');
  for (const name of chosen) findLayer(model, name);
  if (dataset.images.length === 0) throw badInput(`dataset "${dataset.name}" has no images`);
  return jobs.start(model, dataset, [...new Set(chosen)], k);
}

/**
 * The unit's strongest activations over the dataset, from the finished index covering its layer,
 * or INDEX_NOT_BUILT: naming the index job that is building it now (its ID and progress), or
 * saying how to start one.
 */
export async function topRows({ jobs }: Services, unit: Unit, dataset: Dataset): Promise<TopRow[]> {
  const { model, layer } = unit;
  const index = await jobs.finished(model, dataset, layer.name);
  if (index) return jobs.store.top(index.id, layer.name, unit.index);
  const where = { model: model.name, dataset: dataset.name, layer: layer.name };
  const what = `model "${model.name}" over dataset "${dataset.name}"`;
  const job = (await jobs.all()).find(
    (j) => (j.state === 'QUEUED' || j.state === 'RUNNING') && j.model === model.name && j.dataset === dataset.name && j.layers.includes(layer.name),
  );
  if (job) {
    const id = toGlobalId('Job', job.id);
    const eta = job.eta === null ? '' : `, about ${Math.ceil(job.eta)} s left`;
    throw new ApiError(
      'INDEX_NOT_BUILT',
      `the index of ${what} that covers layer "${layer.name}" is being built: job ${id} is ${job.state}, ${job.imagesDone} of ${job.imagesTotal} images${eta}; follow it with subscription { jobProgress(id: "${id}") { state imagesDone } } and ask again when it is DONE`,
      { ...where, job: { id, state: job.state, imagesDone: job.imagesDone, imagesTotal: job.imagesTotal, eta: job.eta } },
    );
  }
  throw new ApiError(
    'INDEX_NOT_BUILT',
    `no finished index of ${what} covers layer "${layer.name}": run mutation { buildIndex(model: "${model.name}", dataset: "${dataset.name}") { id state } } and wait for it to be DONE`,
    where,
  );
}

/** The receptive field of a top activation in its original image's pixels. */
export function topBox(services: Services, unit: Unit, image: SourceImage, row: TopRow): Promise<Box> {
  return originalBox(services, unit.model, image, inputBox(unit, row));
}

/** The dataset image of a top activation. */
export const topImage = (services: Services, dataset: Dataset, row: TopRow) => datasetImage(services, dataset.name, dataset.images[row.image].name);

/** ZF Fig. 2 for `units` of a layer as one PNG: each filter's top-k projections (cropped to the receptive field) beside the image patches. */
export async function topActivationsGrid(scope: Scope, model: Model, layer: Layer, dataset: Dataset, units: Unit[], k: number): Promise<string> {
  checkK(k);
  const { services } = scope;
  const index = await services.jobs.finished(model, dataset, layer.name);
  return topGridUrl(services, { model, layer, dataset, indexId: index?.id, units, k }, () =>
    Promise.all(
      units.map(async (unit) =>
        Promise.all(
          (await topRows(services, unit, dataset)).slice(0, k).map(async (row) => {
            const image = topImage(services, dataset, row);
            const projection = await projectUnit(scope, unit, image, {});
            return { projection, box: await topBox(services, unit, image, row) };
          }),
        ),
      ),
    ),
  );
}
