/**
 * Two models (a model and one of its training snapshots, or any two with the layer in the same
 * shape) unit by unit (Model.compare): each unit beside its best-correlated counterpart, each
 * shown by the projection of its strongest image and its next top images.
 */
import { useEffect, useState } from 'react';
import { query } from '../api';
import { Async, fmt, Link, Pic, useAsync } from '../components';
import { navigate, Route } from '../route';
import { LayerPicker } from './layer';
import { Catalog, LayerInfo, loadLayers, ModelSummary } from './models';

interface Swept {
  value: number;
  image: { name: string | null; url: string | null };
}

interface MatchRow {
  filter: { index: number };
  match: { index: number } | null;
  correlation: number | null;
  topOverlap: number;
  best: (Swept & { projection: { crop: string } })[];
  top: Swept[];
  matchBest: (Swept & { projection: { crop: string } })[];
  matchTop: Swept[];
}

interface ComparisonInfo {
  images: number;
  k: number;
  meanCorrelation: number | null;
  units: { nodes: MatchRow[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } };
}

const PAGE_SIZE = 16;
const ENTRY = 'value image { name url }';
/** Each side's strongest image with its projection, and its first four top images. */
const SIDES = `best: top(first: 1) { ${ENTRY} projection { crop: imageUrl(crop: true) } } top(first: 4) { ${ENTRY} }
  matchBest: matchTop(first: 1) { ${ENTRY} projection { crop: imageUrl(crop: true) } } matchTop(first: 4) { ${ENTRY} }`;

/** The layer compared by default: the deepest ReLU with spatial maps. */
const defaultLayer = (layers: LayerInfo[]) => layers.filter((l) => l.kind === 'RELU' && l.outputShape.length === 3).pop() ?? layers[0];

export function CompareView({ route, model, dataset, catalog }: { route: Route; model: ModelSummary; dataset: string; catalog: Catalog }) {
  const layers = useAsync(() => loadLayers(model.name), [model.name]);
  // Its snapshots first, then the other models.
  const others = [
    ...model.snapshots.map((s) => s.name),
    ...catalog.models.map((m) => m.name).filter((n) => n !== model.name && !model.snapshots.some((s) => s.name === n)),
  ];
  const other = route.other ?? others[0];
  const layer = layers.data && (layers.data.find((l) => l.name === route.layer) ?? defaultLayer(layers.data));
  return (
    <section className="compare">
      <h1>Compare {model.name} with another model, unit by unit</h1>
      <p className="muted">
        Each unit of the layer beside the other model’s unit whose activations (spatially averaged, per image of {dataset}) correlate best with its own
        (Pearson’s r), and how many of their top-k images they share. Each unit is shown by the projection of its strongest image and its next top images.
      </p>
      <nav className="pickers">
        <label>
          Other model{' '}
          <select aria-label="other model" value={other ?? ''} onChange={(e) => navigate({ ...route, other: e.target.value }, true)}>
            {others.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </label>{' '}
        <label>Layer {layers.data && <LayerPicker layers={layers.data} value={layer?.name} onChange={(l) => navigate({ ...route, layer: l }, true)} />}</label>
      </nav>
      {other && layer ? (
        <Matches key={`${other} ${layer.name} ${dataset}`} model={model.name} other={other} layer={layer.name} dataset={dataset} route={route} />
      ) : (
        !others.length && <p className="muted">No other model to compare with.</p>
      )}
    </section>
  );
}

function Matches({ model, other, layer, dataset, route }: { model: string; other: string; layer: string; dataset: string; route: Route }) {
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  useEffect(() => setCursors([null]), [model, other, layer, dataset]);
  const after = cursors[cursors.length - 1];
  const state = useAsync(
    (signal) =>
      query<{ model: { compare: ComparisonInfo } }>(
        `query Compare($model: String!, $other: String!, $layer: String!, $dataset: String!, $after: String) { model(name: $model) { compare(other: $other, layer: $layer, dataset: $dataset) {
          images k meanCorrelation units(first: ${PAGE_SIZE}, after: $after) { nodes { filter { index } match { index } correlation topOverlap ${SIDES} }
          pageInfo { hasNextPage endCursor } } } } }`,
        { model, other, layer, dataset, after },
        signal,
      ).then((d) => d.model.compare),
    [model, other, layer, dataset, after],
  );
  const to = (name: string, filter: number): Route => ({ model: name, dataset: route.dataset, view: 'layers', layer, filter });
  return (
    <Async state={state} what="the comparison (both models over the dataset)">
      {(c) => (
        <>
          <p className="compare-summary">
            Over {c.images} images: mean r of the matches <b>{c.meanCorrelation === null ? '–' : c.meanCorrelation.toFixed(3)}</b>; overlap of top-{c.k} sets.
          </p>
          <div className="compare-head">
            <b>{model}</b>
            <span />
            <b>{other}</b>
          </div>
          {c.units.nodes.map((u) => (
            <div className="compare-row" key={u.filter.index} data-unit={u.filter.index}>
              <Side title={`unit ${u.filter.index}`} to={to(model, u.filter.index)} best={u.best[0]} rest={u.top.slice(1)} />
              <div className="compare-score">
                {u.correlation === null ? (
                  <span className="muted">constant: no match</span>
                ) : (
                  <>
                    r = <b className="compare-r">{u.correlation.toFixed(3)}</b>
                    <br />
                    top-{c.k} overlap {u.topOverlap}
                  </>
                )}
              </div>
              {u.match ? <Side title={`unit ${u.match.index}`} to={to(other, u.match.index)} best={u.matchBest[0]} rest={u.matchTop.slice(1)} /> : <span />}
            </div>
          ))}
          <div className="pager">
            <button type="button" className="small" disabled={cursors.length === 1} onClick={() => setCursors((cs) => cs.slice(0, -1))}>
              ← Back
            </button>
            <button
              type="button"
              className="small"
              disabled={!c.units.pageInfo.hasNextPage}
              onClick={() => setCursors((cs) => [...cs, c.units.pageInfo.endCursor])}
            >
              Next →
            </button>
          </div>
        </>
      )}
    </Async>
  );
}

function Side({ title, to, best, rest }: { title: string; to: Route; best?: Swept & { projection: { crop: string } }; rest: Swept[] }) {
  return (
    <div className="compare-side">
      <Link to={to}>{title}</Link>
      {best && <Pic src={best.projection.crop} alt={`${title} projection`} className="compare-projection" title={`${fmt(best.value)} on ${best.image.name}`} />}
      {rest.map(
        (t, i) =>
          t.image.url && <Pic key={i} src={t.image.url} alt={t.image.name ?? ''} className="compare-thumb" title={`${fmt(t.value)} on ${t.image.name}`} />,
      )}
    </div>
  );
}
