/**
 * One filter: its top-9 dataset patches beside their deconvnet projections (ZF Fig. 2), the whole
 * image with the receptive field on a click, and how the filter grew over training (ZF Fig. 4).
 */
import { ReactNode, useCallback, useEffect, useState } from 'react';
import { ApiError, asApiError, query, request } from '../api';
import {
  Async,
  AsyncState,
  Box,
  BoxedImage,
  ErrorBox,
  fmt,
  IndexPanel,
  Job,
  JOB_FIELDS,
  JobProgress,
  Link,
  Loading,
  Pic,
  useAsync,
  useIndexEpoch,
} from '../components';
import { navigate, Route } from '../route';
import { FeatureVisualizationFigure } from './feature-visualization';
import { LayerPicker } from './layer';
import { Selectivity } from './selectivity';
import { LayerInfo, loadLayers, ModelSummary, shape } from './models';

interface TopActivation {
  rank: number;
  value: number;
  position: { x: number; y: number };
  box: Box;
  patchUrl: string;
  image: { id: string; name: string | null; label: string | null; url: string | null; width: number; height: number };
  /** The projection is a picture of the model's input: its box is in the input's pixels. */
  projection: { crop: string; full: string; inputBox: Box };
}

interface FilterDetail {
  index: number;
  weights: { imageUrl: string | null; shape: number[]; l2: number; min: number; max: number; mean: number } | null;
}

const TOP9 = `query Top9($model: String!, $layer: String!, $filter: Int!, $dataset: String!) {
  model(name: $model) { layer(name: $layer) { filter(index: $filter) { topActivations(dataset: $dataset, first: 9) {
    nodes { rank value position { x y } box { x y width height } patchUrl
      image { id name label url width height }
      projection { crop: imageUrl(crop: true) full: imageUrl inputBox { x y width height } } } } } } } }`;

export function FilterView({ route, model, dataset }: { route: Route; model: ModelSummary; dataset: string }) {
  const name = route.layer!;
  const index = route.filter!;
  const epoch = useIndexEpoch();
  const layers = useAsync(() => loadLayers(model.name), [model.name]);
  const detail = useAsync(
    (signal) =>
      query<{ model: { layer: { filter: FilterDetail } } }>(
        `query Filter($model: String!, $layer: String!, $filter: Int!) { model(name: $model) { layer(name: $layer) { filter(index: $filter) { index weights { imageUrl shape l2 min max mean } } } } }`,
        { model: model.name, layer: name, filter: index },
        signal,
      ).then((d) => d.model.layer.filter),
    [model.name, name, index],
  );
  const top = useAsync(
    (signal) =>
      query<{ model: { layer: { filter: { topActivations: { nodes: TopActivation[] } } } } }>(
        TOP9,
        { model: model.name, layer: name, filter: index, dataset },
        signal,
      ).then((d) => d.model.layer.filter.topActivations.nodes),
    [model.name, name, index, dataset, epoch],
  );
  const layer = layers.data?.find((l) => l.name === name);
  const to = (filter: number): Route => ({ model: model.name, dataset: route.dataset, view: 'layers', layer: name, filter });

  return (
    <section>
      <nav className="crumbs">
        <Link to={{ model: model.name, dataset: route.dataset, view: 'layers' }}>{model.name}</Link> ›{' '}
        {layers.data ? <LayerPicker layers={layers.data} value={name} onChange={(l) => navigate({ ...route, layer: l, filter: undefined })} /> : name} ›{' '}
        <Link to={{ ...to(index), filter: undefined }}>filters</Link> › <b className="filter-name">filter {index}</b>{' '}
        {index > 0 && (
          <Link to={to(index - 1)} className="button small">
            ← {index - 1}
          </Link>
        )}{' '}
        {layer && index + 1 < layer.filterCount && (
          <Link to={to(index + 1)} className="button small">
            {index + 1} →
          </Link>
        )}
      </nav>
      {layer && (
        <p className="muted">
          {layer.kind} · output {shape(layer.outputShape)} · receptive field{' '}
          {layer.receptiveField.global ? 'the whole image' : `${layer.receptiveField.size} px, stride ${layer.receptiveField.stride}`}
        </p>
      )}
      <Async state={detail} what="the filter">
        {(f) =>
          f.weights && (
            <div className="weights">
              {f.weights.imageUrl && <Pic src={f.weights.imageUrl} alt={`kernel ${index}`} size={56} />}
              <span className="muted">
                weights {shape(f.weights.shape)} · ‖w‖ {fmt(f.weights.l2)} · min {fmt(f.weights.min)} · max {fmt(f.weights.max)} · mean {fmt(f.weights.mean)}
              </span>
            </div>
          )
        }
      </Async>

      {!detail.error && <Selectivity model={model.name} layer={name} filter={index} dataset={dataset} />}
      {/* A filter that does not exist: its error (above) says it all. */}
      {!detail.error && <Top9AndEvolution model={model} dataset={dataset} route={route} layer={layer} top={top} />}
    </section>
  );
}

function Top9AndEvolution({
  model,
  dataset,
  route,
  layer,
  top,
}: {
  model: ModelSummary;
  dataset: string;
  route: Route;
  layer?: LayerInfo;
  top: AsyncState<TopActivation[]>;
}) {
  const name = route.layer!;
  const index = route.filter!;
  const [opened, setOpened] = useState<TopActivation>();
  useEffect(() => setOpened(undefined), [model.name, name, index, dataset]);
  const top1 = top.data?.[0];
  return (
    <>
      <h2>Top 9 over {dataset} (ZF Fig. 2)</h2>
      {top.loading && <Loading what="top-9" />}
      {top.error && (
        <>
          <ErrorBox error={top.error} />
          {top.error.has('INDEX_NOT_BUILT') && layer && <IndexPanel model={model.name} dataset={dataset} layer={layer} onCovered={top.reload} />}
        </>
      )}
      {top.data && !top.error && (
        <div className="top9">
          <figure>
            <figcaption>Projections (deconvnet, cropped to the receptive field)</figcaption>
            <div className="grid3 top9-projections">
              {top.data.map((t) => (
                <TopCell key={t.rank} t={t} onOpen={setOpened}>
                  <Pic src={t.projection.crop} alt={`projection ${t.rank + 1}`} />
                </TopCell>
              ))}
            </div>
          </figure>
          <figure>
            <figcaption>Image patches (click for the whole image)</figcaption>
            <div className="grid3 top9-patches">
              {top.data.map((t) => (
                <TopCell key={t.rank} t={t} onOpen={setOpened}>
                  <Pic src={t.patchUrl} alt={`patch ${t.rank + 1}`} />
                  <span className="cell-caption">
                    <b>{fmt(t.value)}</b> {t.image.label}
                    <br />
                    {t.image.name}
                  </span>
                </TopCell>
              ))}
            </div>
          </figure>
          <FeatureVisualizationFigure model={model.name} layer={name} filter={index} />
          {opened && <WholeImage t={opened} model={model} layer={name} filter={index} dataset={route.dataset} onClose={() => setOpened(undefined)} />}
        </div>
      )}
      {model.snapshots.length > 0 && layer && <Evolution model={model} dataset={dataset} layer={layer} filter={index} top1={top1?.image} />}
    </>
  );
}

/** The whole image of a top activation, with the unit's receptive field drawn on it and on the full projection. */
/** One of the top 9 as a grid cell that opens the whole image. */
function TopCell({ t, onOpen, children }: { t: TopActivation; onOpen: (t: TopActivation) => void; children: ReactNode }) {
  return (
    <button type="button" className="cell" onClick={() => onOpen(t)} title={`rank ${t.rank + 1}: ${t.value.toFixed(4)} on ${t.image.name}`}>
      {children}
    </button>
  );
}

function WholeImage({
  t,
  model,
  layer,
  filter,
  dataset,
  onClose,
}: {
  t: TopActivation;
  model: ModelSummary;
  layer: string;
  filter: number;
  dataset?: string;
  onClose: () => void;
}) {
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => e.key === 'Escape' && onClose();
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [onClose]);
  const size = 224;
  return (
    <div className="whole-image" role="dialog" aria-label="whole image">
      <div className="whole-image-head">
        <b>
          #{t.rank + 1} · {t.image.name}
        </b>
        {t.image.label && <span className="badge">{t.image.label}</span>}
        <span className="muted">
          activation {t.value.toFixed(4)} at ({t.position.x}, {t.position.y}) · receptive field {t.box.width} × {t.box.height} at ({t.box.x}, {t.box.y})
        </span>
        <button type="button" className="small" onClick={onClose} aria-label="close">
          ✕
        </button>
      </div>
      <div className="pair">
        <figure>
          <BoxedImage
            src={t.image.url}
            alt={t.image.name ?? 'image'}
            width={t.image.width}
            height={t.image.height}
            box={t.box}
            size={size}
            className="whole-image-picture"
          />
          <figcaption>The image, receptive field boxed</figcaption>
        </figure>
        <figure>
          <BoxedImage
            src={t.projection.full}
            alt="projection"
            width={model.inputShape[2]}
            height={model.inputShape[1]}
            box={t.projection.inputBox}
            size={size}
          />
          <figcaption>Its projection, on the model's input</figcaption>
        </figure>
      </div>
      <Link to={{ model: model.name, dataset, view: 'image', image: t.image.id, layer, unit: { channel: filter, x: t.position.x, y: t.position.y } }}>
        Open in the image view →
      </Link>
    </div>
  );
}

interface SnapshotTop {
  source: 'own' | 'fixed';
  value: number;
  imageName: string | null;
  url: string;
}

/**
 * ZF Fig. 4 for one filter: for each training snapshot (a model named <model>@<snapshot>), the
 * projection of the filter's strongest activation. Exactly as in the paper (the strongest over the
 * whole dataset) when that snapshot has its own index; without one, the strongest unit on a fixed
 * image: the final model's top-1 for this filter.
 */
function Evolution({
  model,
  dataset,
  layer,
  filter,
  top1,
}: {
  model: ModelSummary;
  dataset: string;
  layer: LayerInfo;
  filter: number;
  top1?: { id: string; name: string | null };
}) {
  const epoch = useIndexEpoch();
  const [jobs, setJobs] = useState<Job[]>([]);
  const [error, setError] = useState<ApiError>();
  const dropIfDone = useCallback((j: Job) => j.state === 'DONE' && setJobs((js) => js.filter((x) => x.id !== j.id)), []);
  const indexSnapshots = async () => {
    setError(undefined);
    try {
      const layers = layer.kind === 'CONV' || layer.kind === 'RELU' ? null : [layer.name];
      const started = await Promise.all(
        model.snapshots.map((s) =>
          query<{ buildIndex: Job }>(
            `mutation Build($model: String!, $dataset: String!, $layers: [String!]) { buildIndex(model: $model, dataset: $dataset, layers: $layers) { ${JOB_FIELDS} } }`,
            { model: s.name, dataset, layers },
          ).then((d) => d.buildIndex),
        ),
      );
      setJobs(started.filter((j) => j.state !== 'DONE'));
    } catch (e) {
      setError(asApiError(e));
    }
  };
  return (
    <section className="evolution">
      <h2>Training evolution (ZF Fig. 4)</h2>
      <p className="muted">
        For each training snapshot, the projection of this filter's strongest activation: over all of {dataset} where the snapshot has its own index, else on{' '}
        {top1 ? <b>{top1.name}</b> : "this model's top-1 image"}.{' '}
        <button type="button" className="small" onClick={indexSnapshots}>
          Index the snapshots
        </button>
      </p>
      {error && <ErrorBox error={error} title="buildIndex" />}
      {jobs.map((j) => (
        <JobProgress key={j.id} job={j} onEnd={dropIfDone} />
      ))}
      <div className="strip">
        {model.snapshots.map((s) => (
          <SnapshotTile key={s.name} snapshot={s} dataset={dataset} layer={layer.name} filter={filter} top1={top1} epoch={epoch} />
        ))}
      </div>
    </section>
  );
}

function SnapshotTile({
  snapshot,
  dataset,
  layer,
  filter,
  top1,
  epoch,
}: {
  snapshot: { name: string; epoch: number | null };
  dataset: string;
  layer: string;
  filter: number;
  top1?: { id: string; name: string | null };
  epoch: number;
}) {
  const state = useAsync(
    async (signal): Promise<SnapshotTop | null> => {
      const vars = { model: snapshot.name, layer, filter, dataset };
      const own = await request<{
        model: { layer: { filter: { topActivations: { nodes: { value: number; image: { name: string | null }; projection: { imageUrl: string } }[] } } } };
      }>(
        `query SnapshotTop($model: String!, $layer: String!, $filter: Int!, $dataset: String!) { model(name: $model) { layer(name: $layer) { filter(index: $filter) { topActivations(dataset: $dataset, first: 1) { nodes { value image { name } projection { imageUrl(crop: true) } } } } } } }`,
        vars,
        signal,
      );
      const best = own.data?.model.layer.filter.topActivations.nodes[0];
      if (!own.errors.length && best) return { source: 'own', value: best.value, imageName: best.image.name, url: best.projection.imageUrl };
      if (own.errors.some((e) => e.code !== 'INDEX_NOT_BUILT')) throw new ApiError(own.errors);
      if (!top1) return null;
      const fixed = await query<{ model: { layer: { filter: { projection: { imageUrl: string; seedValue: number } } } } }>(
        `query SnapshotProjection($model: String!, $layer: String!, $filter: Int!, $image: ID!) { model(name: $model) { layer(name: $layer) { filter(index: $filter) { projection(image: { id: $image }) { imageUrl(crop: true) seedValue } } } } }`,
        { model: snapshot.name, layer, filter, image: top1.id },
        signal,
      );
      const p = fixed.model.layer.filter.projection;
      return { source: 'fixed', value: p.seedValue, imageName: top1.name, url: p.imageUrl };
    },
    [snapshot.name, layer, filter, dataset, top1?.id, epoch],
  );
  return (
    <figure className="snapshot" data-snapshot={snapshot.name}>
      <figcaption>
        <b>epoch {snapshot.epoch ?? '?'}</b>
      </figcaption>
      <Async state={state} what="">
        {(t) =>
          t ? (
            <>
              <Pic src={t.url} alt={`projection at epoch ${snapshot.epoch}`} />
              <span className="cell-caption" title={t.source === 'own' ? "the snapshot's own top-1 over the dataset" : "on the final model's top-1 image"}>
                <b>{fmt(t.value)}</b> {t.source === 'own' ? 'own top-1' : 'same image'}
                <br />
                {t.imageName}
              </span>
            </>
          ) : (
            <span className="muted">needs the top-9 index</span>
          )
        }
      </Async>
    </figure>
  );
}
