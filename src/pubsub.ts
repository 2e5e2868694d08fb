/** The process's publish/subscribe bus for GraphQL subscriptions (job progress). */
import { createPubSub } from '@graphql-yoga/subscription';
import type { JobInfo } from './index/jobs';

export const JOB_PROGRESS = 'JOB_PROGRESS';
export const pubSub = createPubSub<{ [JOB_PROGRESS]: [JobInfo] }>();
