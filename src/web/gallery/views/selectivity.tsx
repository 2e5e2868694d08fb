/** A unit's class selectivity: the labels of its top-9 images over the dataset (Filter.selectivity, from the index). */
import { query } from '../api';
import { ErrorBox, useAsync, useIndexEpoch } from '../components';

interface SelectivityInfo {
  images: number;
  labelled: number;
  label: string | null;
  count: number;
  share: number;
  entropy: number;
  labels: { label: string; count: number }[];
}

export function Selectivity({ model, layer, filter, dataset }: { model: string; layer: string; filter: number; dataset: string }) {
  const epoch = useIndexEpoch();
  const state = useAsync(
    (signal) =>
      query<{ model: { layer: { filter: { selectivity: SelectivityInfo } } } }>(
        `query Selectivity($model: String!, $layer: String!, $filter: Int!, $dataset: String!) { model(name: $model) { layer(name: $layer) { filter(index: $filter) {
          selectivity(dataset: $dataset) { images labelled label count share entropy labels { label count } } } } } }`,
        { model, layer, filter, dataset },
        signal,
      ).then((d) => d.model.layer.filter.selectivity),
    [model, layer, filter, dataset, epoch],
  );
  // Without an index the top-9 panel below says so, with its Build button.
  if (state.error) return state.error.has('INDEX_NOT_BUILT') ? null : <ErrorBox error={state.error} title="Selectivity" />;
  const s = state.data;
  if (!s) return null;
  return (
    <div className="selectivity" aria-label="class selectivity">
      {s.label === null ? (
        <span className="muted">Class selectivity: none of its top {s.images} images has a label.</span>
      ) : (
        <>
          <span>
            Class selectivity: <b className="selectivity-label">{s.label}</b> in {s.count} of its top {s.labelled} ({(s.share * 100).toFixed(0)} %) · entropy{' '}
            <b>{s.entropy.toFixed(2)}</b> bits
          </span>
          <span className="selectivity-bars">
            {s.labels.map((l) => (
              <span key={l.label} className="selectivity-bar" title={`${l.label}: ${l.count}`} style={{ flexGrow: l.count }}>
                {l.label} {l.count}
              </span>
            ))}
          </span>
        </>
      )}
    </div>
  );
}
