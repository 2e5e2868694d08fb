/**
 * The index store: one row per index job with its progress, and one row per channel with its
 * current top-k (packed: packCandidates). A job checkpoints by writing both in one transaction,
 * so after a crash the store holds a consistent state to resume from. A job is run by the one
 * process that holds its lease (claim): others wait, and take it over when the lease runs out
 * (its process died), so several processes can share one store. Two implementations:
 * SQLite in CACHE_DIR (sqlite-store.ts, the embedded default) and PostgreSQL (postgres-store.ts,
 * DATABASE_URL), which several processes on several machines share; createServices picks one.
 * With the job queue (queue.ts) a job is instead split into chunks whose top-k the PostgreSQL
 * store merges (ChunkStore), each chunk once.
 */
import { Candidate } from './topk';

export const JOB_STATES = ['QUEUED', 'RUNNING', 'DONE', 'FAILED', 'CANCELLED'] as const;
export type JobState = (typeof JOB_STATES)[number];
/** Whether a job in this state has ended (and will not change unless started again). */
export const jobEnded = (state: JobState): boolean => state === 'DONE' || state === 'FAILED' || state === 'CANCELLED';

export interface IndexRow {
  id: string;
  model: string;
  /** The model's identity: its .onnx sha256 and its sidecar's preprocessing (keys.ts modelCacheId); column model_sha. */
  modelId: string;
  dataset: string;
  fingerprint: string;
  layers: string[];
  k: number;
  state: JobState;
  nextImage: number;
  total: number;
  error: string | null;
  /** The process holding the job's lease (JobManager's owner), if any. */
  owner: string | null;
  /** Images per chunk of a job split by the queue (ChunkStore.planChunks); null otherwise. */
  chunkSize: number | null;
  createdAt: number;
  updatedAt: number;
}

export interface TopRow extends Candidate {
  layer: string;
  channel: number;
  rank: number;
}

/** An image of the dataset that could not be read or decoded: left out of the index, named in the job's report. */
export interface FailedImage {
  /** Its index in the dataset's name order. */
  image: number;
  name: string;
  error: string;
}

/** A channel's top-k as stored: its entries packed (packCandidates). */
export interface PackedTop {
  layer: string;
  channel: number;
  entries: Buffer;
}

export interface IndexStore {
  get(id: string): Promise<IndexRow | undefined>;
  /** Every index, oldest first. */
  all(): Promise<IndexRow[]>;
  /** Adds the row unless one with its id exists (another process may have added it meanwhile). */
  create(row: Omit<IndexRow, 'createdAt' | 'updatedAt' | 'error' | 'owner' | 'chunkSize'>): Promise<void>;
  /** Sets the state; any state but RUNNING also releases the lease (a cancelled job's owner stops at its next checkpoint). */
  setState(id: string, state: JobState, error?: string | null): Promise<void>;
  /** Takes the job's lease for `owner` until `until` (ms) if the job is QUEUED or RUNNING and no other owner (but `dead`, known to have died) holds an unexpired lease. */
  claim(id: string, owner: string, until: number, dead?: string): Promise<boolean>;
  /** Saves the changed channels' top-k, the images that failed since the last checkpoint and the progress, and renews the lease, atomically; false (nothing saved) if `owner` no longer holds it. */
  checkpoint(id: string, owner: string, until: number, nextImage: number, changed: PackedTop[], failed: FailedImage[]): Promise<boolean>;
  /** The images of an index that failed, in dataset order. */
  failedImages(id: string): Promise<FailedImage[]>;
  /** Every saved top-k row of an index (to resume from). */
  tops(id: string): Promise<TopRow[]>;
  /** One channel's top-k, best first. */
  top(id: string, layer: string, channel: number): Promise<TopRow[]>;
  close(): Promise<void>;
}

/** What the job queue (queue.ts) needs besides: chunked jobs, each chunk's top-k merged once. PostgreSQL only. */
export interface ChunkStore extends IndexStore {
  /**
   * Gives an unfinished job a chunk plan of `size` images per chunk unless it has one (another
   * process may have given it first; one whose progress was made without a plan starts over),
   * and returns the job with its plan.
   */
  planChunks(id: string, size: number): Promise<IndexRow & { chunkSize: number }>;
  /** The chunks of a job already merged. */
  mergedChunks(id: string): Promise<Set<number>>;
  /**
   * Merges a chunk's top-k (mergePacked) and failed images into the job's, counts its images as
   * done, and marks the job RUNNING, or DONE with its last chunk, in one transaction. Merges
   * nothing (false) if the chunk was merged before or the job is not QUEUED or RUNNING.
   */
  mergeChunk(id: string, chunk: number, images: number, tops: PackedTop[], failed: FailedImage[]): Promise<boolean>;
  /** Counts a start of the chunk (a worker took it) and returns its starts since the job was last queued. */
  startChunk(id: string, chunk: number): Promise<number>;
}

export function unpackEntries({ layer, channel, entries }: PackedTop): TopRow[] {
  const v = new Float64Array(entries.buffer.slice(entries.byteOffset, entries.byteOffset + entries.byteLength));
  return Array.from({ length: v.length / 4 }, (_, rank) => ({
    layer,
    channel,
    rank,
    value: v[4 * rank],
    image: v[4 * rank + 1],
    y: v[4 * rank + 2],
    x: v[4 * rank + 3],
  }));
}

/** A stored row (columns in snake case) as an IndexRow. */
export function toRow(r: Record<string, unknown>): IndexRow {
  return {
    id: r.id as string,
    model: r.model as string,
    modelId: r.model_sha as string,
    dataset: r.dataset as string,
    fingerprint: r.fingerprint as string,
    layers: JSON.parse(r.layers as string),
    k: Number(r.k),
    state: r.state as JobState,
    nextImage: Number(r.next_image),
    total: Number(r.total),
    error: (r.error as string) ?? null,
    owner: (r.owner as string) ?? null,
    chunkSize: r.chunk_size === null || r.chunk_size === undefined ? null : Number(r.chunk_size),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}
