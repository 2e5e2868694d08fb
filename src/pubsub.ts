/**
 * The process's publish/subscribe bus for GraphQL subscriptions (job progress), and the channel
 * that carries job progress to it: with REDIS_URL, progress is also published on a Redis channel
 * that every server process listens to, so a client subscribed to any replica sees the progress
 * of a job run by any process that shares the index store.
 */
import { randomUUID } from 'node:crypto';
import { createPubSub } from '@graphql-yoga/subscription';
import { createClient } from '@redis/client';
import type { EventEmitter } from 'node:events';
import type { JobInfo } from './index/jobs';
import { log } from './log';

export const JOB_PROGRESS = 'JOB_PROGRESS';
export const pubSub = createPubSub<{ [JOB_PROGRESS]: [JobInfo] }>();

const CHANNEL = 'convscope:job-progress';

export interface ProgressChannel {
  publish(info: JobInfo): void;
  close(): Promise<void>;
}

/**
 * Progress of this process's jobs goes to its own subscriptions at once, and with `redisUrl` to
 * the other processes through Redis (marked with this process's id, which it ignores when it hears
 * it back). A Redis that is down loses only the other processes' copies, never this one's.
 */
export function progressChannel(redisUrl?: string): ProgressChannel {
  const local = (info: JobInfo) => pubSub.publish(JOB_PROGRESS, info);
  if (!redisUrl) return { publish: local, close: async () => undefined };
  const self = randomUUID();
  const publisher = createClient({ url: redisUrl, disableOfflineQueue: true });
  const subscriber = publisher.duplicate();
  const failed = (e: Error) => log.debug({ err: e.message }, 'job progress channel: redis unavailable');
  publisher.on('error', failed);
  subscriber.on('error', failed);
  publisher.connect().catch(failed);
  subscriber
    .connect()
    .then(() =>
      subscriber.subscribe(CHANNEL, (message) => {
        const { from, info } = JSON.parse(message) as { from: string; info: JobInfo };
        if (from !== self) local(info);
      }),
    )
    .catch(failed);
  return {
    publish(info) {
      local(info);
      if (publisher.isReady) publisher.publish(CHANNEL, JSON.stringify({ from: self, info })).catch(failed);
    },
    async close() {
      await Promise.allSettled([publisher.close(), subscriber.close()]);
    },
  };
}

/** Sends the progress events of this process's jobs (index and atlas jobs: its runs, or its chunks as a worker) down `progressChannel`; returns what stops it. */
export function publishJobProgress(sources: EventEmitter[], redisUrl?: string): () => Promise<void> {
  const channel = progressChannel(redisUrl);
  const publish = (info: JobInfo | undefined) => info && channel.publish(info);
  for (const jobs of sources) jobs.on('progress', publish);
  return async () => {
    for (const jobs of sources) jobs.off('progress', publish);
    await channel.close();
  };
}
