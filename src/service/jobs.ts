/**
 * Jobs of every kind by id — index jobs (index/jobs.ts), atlas and feature visualization jobs (index/process-jobs.ts) —
 * for `node(id)`, `jobs`, `cancelJob` and the `jobProgress` subscription.
 */
import { notFound } from '../errors';
import type { JobInfo } from '../index/jobs';
import { jobEnded } from '../index/store';
import { JOB_PROGRESS, pubSub } from '../pubsub';
import type { Services } from './services';

export async function findJob({ jobs, processJobs }: Services, id: string): Promise<JobInfo | undefined> {
  return processJobs.info(id) ?? jobs.info(id);
}

/** Every job this process knows: index jobs (of the store, oldest first), then those run in this process. */
export async function allJobs({ jobs, processJobs }: Services): Promise<JobInfo[]> {
  return [...(await jobs.all()), ...processJobs.all()];
}

/** Stops a job: an index job at its next checkpoint (buildIndex resumes it), an atlas job at its next unit, a feature visualization at its next step. */
export async function cancelJob({ jobs, processJobs }: Services, id: string): Promise<JobInfo | undefined> {
  return processJobs.cancel(id) ?? jobs.cancel(id);
}

/**
 * A job's progress for a subscription: its state now, then every change, ending with the job.
 * A client that subscribes after the last batch still hears DONE; one that subscribes to a
 * finished job gets its final state and an end, not a silent wait. Progress that arrives late
 * (workers publish each chunk's, and two may cross on the way) is skipped: it never goes back.
 */
export async function* jobUpdates(services: Services, id: string): AsyncGenerator<JobInfo> {
  const updates = pubSub.subscribe(JOB_PROGRESS)[Symbol.asyncIterator]();
  let next = updates.next(); // listens from here on: nothing published while the state is read is lost
  try {
    let last = await findJob(services, id);
    if (!last) throw notFound(`no job ${id}`);
    yield last;
    while (!jobEnded(last.state)) {
      const { value, done } = await next;
      if (done) return;
      next = updates.next();
      if (value.id !== id || (value.state === last.state && value.imagesDone <= last.imagesDone && (value.unitsDone ?? 0) <= (last.unitsDone ?? 0))) continue;
      yield (last = value);
    }
  } finally {
    await updates.return?.();
  }
}
