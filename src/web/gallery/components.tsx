/** Pieces every view uses: async state, loading and error panels, links, index jobs. */
import { DependencyList, MouseEvent, ReactNode, useCallback, useEffect, useRef, useState, useSyncExternalStore } from 'react';
import { ApiError, asApiError, query, subscribe } from './api';
import { formatRoute, navigate, Route } from './route';

export interface AsyncState<T> {
  loading: boolean;
  data?: T;
  error?: ApiError;
  reload: () => void;
}

/** Runs `load` whenever `deps` change (aborting the previous run); never swallows its error. */
export function useAsync<T>(load: (signal: AbortSignal) => Promise<T>, deps: DependencyList): AsyncState<T> {
  const [state, setState] = useState<{ loading: boolean; data?: T; error?: ApiError }>({ loading: true });
  const [nonce, setNonce] = useState(0);
  useEffect(() => {
    const controller = new AbortController();
    // Keep the old data (or error) on screen while loading: no flicker, and panels shown because of
    // an error (the Build index button) stay mounted while the request is retried.
    setState((s) => ({ ...s, loading: true }));
    load(controller.signal).then(
      (data) => !controller.signal.aborted && setState({ loading: false, data }),
      (err) => !controller.signal.aborted && setState({ loading: false, error: asApiError(err) }),
    );
    return () => controller.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, nonce]);
  const reload = useCallback(() => setNonce((n) => n + 1), []);
  return { ...state, reload };
}

export function Loading({ what = '' }: { what?: string }) {
  return (
    <p className="loading" role="status">
      <span className="spinner" aria-hidden="true" /> Loading{what ? ` ${what}` : ''}…
    </p>
  );
}

/** Every error of a request: message and extensions.code. */
export function ErrorBox({ error, title }: { error: ApiError; title?: string }) {
  return (
    <div className="error" role="alert">
      {title && <strong>{title}</strong>}
      <ul>
        {error.errors.map((e, i) => (
          <li key={i}>
            {e.code && <code className="code">{e.code}</code>} <span className="message">{e.message}</span>
            {e.path && <span className="path"> (at {e.path.join('.')})</span>}
          </li>
        ))}
      </ul>
    </div>
  );
}

/** Loading, then the error or `children(data)`. */
export function Async<T>({ state, what, children }: { state: AsyncState<T>; what?: string; children: (data: T) => ReactNode }) {
  if (state.error)
    return (
      <>
        {state.loading && <Loading what={what} />}
        <ErrorBox error={state.error} />
      </>
    );
  if (state.data === undefined) return <Loading what={what} />;
  return (
    <>
      {state.loading && <Loading what={what} />}
      {children(state.data)}
    </>
  );
}

/** A real link (open in a new tab works) that navigates in place on a plain click. */
export function Link({ to, children, className, title }: { to: Route; children: ReactNode; className?: string; title?: string }) {
  const href = formatRoute(to);
  const onClick = (e: MouseEvent<HTMLAnchorElement>) => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(to);
  };
  return (
    <a href={href} onClick={onClick} className={className} title={title}>
      {children}
    </a>
  );
}

export const fmt = (v: number, digits = 3) => (Math.abs(v) >= 1000 || (v !== 0 && Math.abs(v) < 0.001) ? v.toExponential(2) : v.toFixed(digits));

/** Index jobs that finished in this page: views that need an index reload when it changes. */
let indexEpoch = 0;
const indexListeners = new Set<() => void>();
function indexBuilt() {
  indexEpoch++;
  indexListeners.forEach((l) => l());
}
export function useIndexEpoch(): number {
  return useSyncExternalStore(
    (l) => {
      indexListeners.add(l);
      return () => indexListeners.delete(l);
    },
    () => indexEpoch,
  );
}

export interface Job {
  id: string;
  model: string;
  dataset: string;
  layers: string[];
  state: 'QUEUED' | 'RUNNING' | 'DONE' | 'FAILED' | 'CANCELLED';
  imagesDone: number;
  imagesTotal: number;
  rate: number | null;
  eta: number | null;
  error: string | null;
}

export const JOB_FIELDS = 'id model dataset layers state imagesDone imagesTotal rate eta error';
const isActive = (j: Job) => j.state === 'QUEUED' || j.state === 'RUNNING';

/**
 * A job's live progress: the jobProgress subscription, plus a slow poll of the job list because
 * the subscription only reports what happens after it starts (a job may end just before).
 * `onEnd` hears of its last state once.
 */
export function JobProgress({ job: initial, onEnd }: { job: Job; onEnd?: (job: Job) => void }) {
  const [job, setJob] = useState(initial);
  const [error, setError] = useState<ApiError>();
  const active = isActive(job);
  useEffect(() => {
    if (!active) return;
    const unsubscribe = subscribe<{ jobProgress: Job }>(
      `subscription JobProgress($id: ID!) { jobProgress(id: $id) { ${JOB_FIELDS} } }`,
      { id: initial.id },
      (d) => setJob(d.jobProgress),
      setError,
    );
    // (Query.jobs, not node(id): node does not resolve Job IDs.)
    const poll = setInterval(() => {
      query<{ jobs: Job[] }>(`{ jobs { ${JOB_FIELDS} } }`).then(
        (d) => {
          const now = d.jobs.find((j) => j.id === initial.id);
          if (now) setJob((j) => (now.imagesDone >= j.imagesDone || !isActive(now) ? now : j));
        },
        (e) => setError(asApiError(e)),
      );
    }, 2000);
    return () => {
      unsubscribe();
      clearInterval(poll);
    };
  }, [initial.id, active]);
  const announced = useRef(false);
  useEffect(() => {
    if (!isActive(job) && !announced.current) {
      announced.current = true;
      if (job.state === 'DONE') indexBuilt();
      onEnd?.(job);
    }
  }, [job, onEnd]);
  const cancel = () => query(`mutation Cancel($id: ID!) { cancelJob(id: $id) { id } }`, { id: job.id }).catch((e) => setError(asApiError(e)));
  const pct = job.imagesTotal ? (100 * job.imagesDone) / job.imagesTotal : 0;
  return (
    <div className={`job job-${job.state.toLowerCase()}`} data-state={job.state}>
      <div className="job-head">
        <span className="job-title">
          Index of <b>{job.model}</b> over <b>{job.dataset}</b> ({job.layers.length === 1 ? job.layers[0] : `${job.layers.length} layers`})
        </span>
        <span className="badge">{job.state}</span>
        {active && (
          <button type="button" className="small" onClick={cancel}>
            Cancel
          </button>
        )}
      </div>
      <progress max={job.imagesTotal || 1} value={job.imagesDone} aria-label="index progress" />
      <div className="job-stats">
        {job.imagesDone} / {job.imagesTotal} images ({pct.toFixed(0)} %)
        {job.rate !== null && active && <> · {job.rate.toFixed(0)} images/s</>}
        {job.eta !== null && active && <> · ETA {job.eta < 1 ? '< 1' : job.eta.toFixed(0)} s</>}
      </div>
      {job.error && <ErrorBox error={new ApiError([{ message: job.error, code: `JOB_${job.state}` }])} />}
      {error && <ErrorBox error={error} title="Job progress" />}
    </div>
  );
}

/**
 * The model's top-k index over a dataset: jobs running now (live), and a button that starts one
 * (for `layer` if the default index — every Conv and ReLU — does not cover it).
 */
export function IndexPanel({
  model,
  dataset,
  layer,
  compact,
  onCovered,
}: {
  model: string;
  dataset: string;
  layer?: { name: string; kind: string };
  compact?: boolean;
  onCovered?: () => void;
}) {
  const epoch = useIndexEpoch();
  const jobs = useAsync(
    () => query<{ jobs: Job[] }>(`{ jobs { ${JOB_FIELDS} } }`).then((d) => d.jobs.filter((j) => j.model === model && j.dataset === dataset)),
    [model, dataset, epoch],
  );
  const [started, setStarted] = useState<Job[]>([]);
  const [buildError, setBuildError] = useState<ApiError>();
  const [building, setBuilding] = useState(false);
  useEffect(() => setStarted([]), [model, dataset]);

  const build = async () => {
    setBuilding(true);
    setBuildError(undefined);
    try {
      const layers = layer && layer.kind !== 'CONV' && layer.kind !== 'RELU' ? [layer.name] : null;
      const d = await query<{ buildIndex: Job }>(
        `mutation Build($model: String!, $dataset: String!, $layers: [String!]) { buildIndex(model: $model, dataset: $dataset, layers: $layers) { ${JOB_FIELDS} } }`,
        { model, dataset, layers },
      );
      if (d.buildIndex.state === 'DONE') indexBuilt();
      else setStarted((s) => [...s.filter((j) => j.id !== d.buildIndex.id), d.buildIndex]);
    } catch (e) {
      setBuildError(asApiError(e));
    } finally {
      setBuilding(false);
    }
  };

  // A finished job leaves the panel (its "built" says it); a failed one stays, with its error.
  const dropIfDone = useCallback((j: Job) => j.state === 'DONE' && setStarted((s) => s.filter((x) => x.id !== j.id)), []);
  const known = jobs.data ?? [];
  const running = [...started, ...known.filter((j) => isActive(j) && !started.some((s) => s.id === j.id))];
  const done = known.filter((j) => j.state === 'DONE');
  const covered = layer ? done.some((j) => j.layers.includes(layer.name)) : done.length > 0;
  // A job may have finished between the caller's failed request and this list (no progress event
  // comes then): tell the caller once, so that it asks again.
  const told = useRef(false);
  useEffect(() => {
    if (covered && onCovered && !told.current) {
      told.current = true;
      onCovered();
    }
  }, [covered, onCovered]);
  return (
    <section className={`index-panel${compact ? ' compact' : ''}`} aria-label="top-k index">
      <div className="index-head">
        <span>
          Top-9 index over <b>{dataset}</b>
          {layer && <> for {layer.name}</>}: {jobs.loading && !jobs.data ? 'checking…' : covered ? 'built' : running.length ? 'building…' : 'not built'}
        </span>
        <button type="button" onClick={build} disabled={building}>
          {building ? 'Starting…' : 'Build index'}
        </button>
      </div>
      {jobs.error && <ErrorBox error={jobs.error} title="Jobs" />}
      {buildError && <ErrorBox error={buildError} title="buildIndex" />}
      {running.map((j) => (
        <JobProgress key={j.id} job={j} onEnd={dropIfDone} />
      ))}
    </section>
  );
}

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** An image (of width × height pixels) shown `size` px wide, with a box drawn over it (SVG). */
export function BoxedImage({
  src,
  alt,
  width,
  height,
  box,
  size,
  className,
}: {
  src: string | null;
  alt: string;
  width: number;
  height: number;
  box?: Box;
  size: number;
  className?: string;
}) {
  return (
    <div className={`boxed ${className ?? ''}`} style={{ width: size, height: (size * height) / width }}>
      {src ? <img src={src} alt={alt} className="pic" /> : <span className="blank">{alt}: the browser does not have its pixels</span>}
      {box && (
        <svg viewBox={`0 0 ${width} ${height}`} preserveAspectRatio="none" aria-label={`box ${box.x}, ${box.y}, ${box.width} × ${box.height}`}>
          <rect x={box.x} y={box.y} width={box.width} height={box.height} vectorEffect="non-scaling-stroke" />
        </svg>
      )}
    </div>
  );
}

/** An image scaled up without blurring (the demo images are 28 × 28). */
export function Pic({
  src,
  alt,
  size,
  className,
  onClick,
  title,
}: {
  src: string;
  alt: string;
  size?: number;
  className?: string;
  onClick?: () => void;
  title?: string;
}) {
  return (
    <img
      src={src}
      alt={alt}
      title={title}
      className={`pic ${className ?? ''}`}
      style={size ? { width: size, height: size } : undefined}
      onClick={onClick}
      decoding="async"
    />
  );
}
