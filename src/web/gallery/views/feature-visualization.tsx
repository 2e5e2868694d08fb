/**
 * A unit's feature visualization (Filter.featureVisualization), beside its top-9: computed on a
 * click, as it takes from seconds (a small model) to tens of seconds (AlexNet at 224 px).
 */
import { useEffect, useState } from 'react';
import { ApiError, asApiError, query } from '../api';
import { ErrorBox, fmt, Loading, Pic } from '../components';

const STEPS = 512;

const FEATURE_VISUALIZATION = `query FeatureVisualization($model: String!, $layer: String!, $filter: Int!, $steps: Int!) {
  model(name: $model) { layer(name: $layer) { filter(index: $filter) { featureVisualization(steps: $steps) { imageUrl values size } } } } }`;

interface Result {
  imageUrl: string;
  values: number[];
  size: number;
}

export function FeatureVisualizationFigure({ model, layer, filter }: { model: string; layer: string; filter: number }) {
  const [state, setState] = useState<{ loading?: boolean; data?: Result; error?: ApiError }>({});
  useEffect(() => setState({}), [model, layer, filter]);
  const compute = () => {
    setState({ loading: true });
    query<{ model: { layer: { filter: { featureVisualization: Result } } } }>(FEATURE_VISUALIZATION, { model, layer, filter, steps: STEPS }).then(
      (d) => setState({ data: d.model.layer.filter.featureVisualization }),
      (e) => setState({ error: asApiError(e) }),
    );
  };
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
        <Loading what={`the feature visualization (${STEPS} steps)`} />
      ) : (
        <button type="button" className="button" onClick={compute}>
          Compute ({STEPS} steps)
        </button>
      )}
      {state.error && <ErrorBox error={state.error} />}
    </figure>
  );
}
