/**
 * A unit's feature visualization, beside its top-9: computed on a click as a job
 * (startFeatureVisualization), as it takes from seconds (a small model) to tens of seconds
 * (AlexNet at 224 px, more than a request may take), its steps shown over jobProgress; once DONE,
 * Filter.featureVisualization reads the cached result.
 */
import { useEffect, useRef, useState } from 'react';
import { ApiError, asApiError, query, subscribe } from '../api';
import { ErrorBox, fmt, Loading, Pic } from '../components';

const STEPS = 512;

const FEATURE_VISUALIZATION = `query FeatureVisualization($model: String!, $layer: String!, $filter: Int!, $steps: Int!) {
  model(name: $model) { layer(name: $layer) { filter(index: $filter) { featureVisualization(steps: $steps) { imageUrl values size } } } } }`;
const JOB_FIELDS = 'id state unitsDone unitsTotal error';
const START = `mutation StartFeatureVisualization($model: String!, $layer: String!, $filter: Int!, $steps: Int!) {
  startFeatureVisualization(model: $model, layer: $layer, filter: $filter, steps: $steps) { ${JOB_FIELDS} } }`;
const PROGRESS = `subscription FeatureVisualizationProgress($id: ID!) { jobProgress(id: $id) { ${JOB_FIELDS} } }`;

interface Result {
  imageUrl: string;
  values: number[];
  size: number;
}

interface Job {
  id: string;
  state: 'QUEUED' | 'RUNNING' | 'DONE' | 'FAILED' | 'CANCELLED';
  unitsDone: number;
  unitsTotal: number;
  error: string | null;
}

export function FeatureVisualizationFigure({ model, layer, filter }: { model: string; layer: string; filter: number }) {
  const [state, setState] = useState<{ loading?: boolean; job?: Job; data?: Result; error?: ApiError }>({});
  const stop = useRef<() => void>(undefined);
  useEffect(() => {
    setState({});
    return () => stop.current?.();
  }, [model, layer, filter]);
  const vars = { model, layer, filter, steps: STEPS };
  const fail = (e: unknown) => setState({ error: asApiError(e) });
  const read = () =>
    query<{ model: { layer: { filter: { featureVisualization: Result } } } }>(FEATURE_VISUALIZATION, vars).then(
      (d) => setState({ data: d.model.layer.filter.featureVisualization }),
      fail,
    );
  const follow = (job: Job) => {
    setState({ loading: true, job });
    if (job.state === 'DONE') return read();
    if (job.state === 'FAILED' || job.state === 'CANCELLED') return fail(new ApiError([{ message: job.error ?? 'the job ended', code: `JOB_${job.state}` }]));
  };
  const compute = () => {
    setState({ loading: true });
    query<{ startFeatureVisualization: Job }>(START, vars).then(({ startFeatureVisualization: job }) => {
      follow(job);
      if (job.state !== 'RUNNING') return;
      // The subscription ends with the job; it sends the job's state now first, so no end is missed.
      stop.current = subscribe<{ jobProgress: Job }>(PROGRESS, { id: job.id }, (d) => follow(d.jobProgress), fail);
    }, fail);
  };
  const job = state.job;
  return (
    <figure className="feature-visualization">
      <figcaption>Feature visualization (the channel&rsquo;s mean maximised from noise, Lucid&rsquo;s regularisations)</figcaption>
      {state.data ? (
        <>
          <Pic src={state.data.imageUrl} alt={`feature visualization of filter ${filter}`} size={Math.max(168, state.data.size)} />
          <span className="cell-caption">
            channel mean <b>{fmt(state.data.values[0])}</b> after {STEPS} steps
          </span>
        </>
      ) : state.loading ? (
        job ? (
          <span className="cell-caption">
            <progress className="featvis-progress" max={job.unitsTotal || STEPS} value={job.unitsDone} aria-label="feature visualization progress" />
            <br />
            {job.unitsDone} / {job.unitsTotal || STEPS} steps
          </span>
        ) : (
          <Loading what={`the feature visualization (${STEPS} steps)`} />
        )
      ) : (
        <button type="button" className="button" onClick={compute}>
          Compute ({STEPS} steps)
        </button>
      )}
      {state.error && <ErrorBox error={state.error} />}
    </figure>
  );
}
