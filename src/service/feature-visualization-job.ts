/**
 * startFeatureVisualization: a feature visualization (feature-visualization.ts) as a job
 * (index/process-jobs.ts), for runs longer than a request may take. Its units are the
 * optimisation's steps; when DONE its `url` is the PNG's. The job's id is named by the result's
 * cache key: asking again, or after the field computed it, or after a restart, finds the cached
 * result and answers DONE at once.
 */
import { createHash } from 'node:crypto';
import { ApiError } from '../errors';
import type { JobInfo } from '../index/jobs';
import type { Unit } from '../model';
import { checkFeatureVisualization, FeatureVisualizationRequest, featureVisualizationResultKey, StepProgress, visualizeUnit } from './feature-visualization';
import type { Services } from './services';
import { featureVisualizationImageUrl } from './views';

/** Starts (or finds) the feature visualization of `unit` as a job; BAD_USER_INPUT as the field. Returns at once. */
export async function startFeatureVisualization(services: Services, unit: Unit, request: FeatureVisualizationRequest): Promise<JobInfo> {
  const options = checkFeatureVisualization(services, unit, request);
  const key = featureVisualizationResultKey(unit, options);
  const id = `featvis-${createHash('sha256').update(key).digest('hex').slice(0, 32)}`;
  const { processJobs, cache } = services;
  const known = processJobs.info(id);
  if (known?.state === 'RUNNING' || known?.state === 'DONE') return known;
  // Of a model alone: no dataset, no k.
  const spec = { id, kind: 'FEATURE_VISUALIZATION' as const, model: unit.model.name, dataset: '', layers: [unit.layer.name], k: 0, url: null };
  const imageUrl = async (progress?: StepProgress) => featureVisualizationImageUrl(services, await visualizeUnit(services, unit, options, progress));
  if (await cache.has(key)) return processJobs.finished({ ...spec, url: await imageUrl() }, options.steps); // a cache hit: runs nothing
  const limit = services.config.featvisMaxJobs;
  if (processJobs.runningOf('FEATURE_VISUALIZATION') >= limit) {
    throw new ApiError(
      'OVERLOADED',
      `${limit} feature visualization jobs are running, the most at once (FEATVIS_MAX_JOBS): start this one when one of them ends`,
      { limit },
    );
  }
  return processJobs.start(spec, (report, cancelled) =>
    imageUrl({ report: (done, total) => report({ imagesDone: 0, imagesTotal: 0, unitsDone: done, unitsTotal: total }), cancelled }),
  );
}
