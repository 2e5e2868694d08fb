/**
 * One image (from a dataset, or uploaded): the model's predictions, a layer's feature maps (click
 * a unit for its projection) and the occlusion maps (ZF Fig. 7).
 */
import { ChangeEvent, MouseEvent, useEffect, useRef, useState } from 'react';
import { ApiError, asApiError, fetchNpy, fileToBase64, PAGE, Connection, query, request } from '../api';
import { Async, Box, BoxedImage, ErrorBox, fmt, Link, Loading, Pic, useAsync } from '../components';
import { navigate, Route } from '../route';
import { InvariancePanel } from './invariance';
import { LayerPicker } from './layer';
import { LayerInfo, loadLayers, ModelSummary } from './models';
import { TopUnits } from './top-units';

interface ImageInfo {
  id: string;
  name: string | null;
  label: string | null;
  url: string | null;
  width: number;
  height: number;
  dataset: string | null;
}

/** Uploaded images have no URL on the server: the page keeps their pixels for this tab. */
const uploadKey = (id: string) => `convscope.upload.${id}`;
function uploadedSrc(id: string): string | null {
  try {
    return sessionStorage.getItem(uploadKey(id));
  } catch {
    return null;
  }
}

/** The layer shown by default: the deepest ReLU whose maps are still at least 8 units wide. */
function defaultLayer(layers: LayerInfo[]): LayerInfo | undefined {
  const spatial = layers.filter((l) => l.outputShape.length === 3);
  const relus = spatial.filter((l) => l.kind === 'RELU');
  return relus.filter((l) => l.outputShape[2] >= 8).pop() ?? relus[0] ?? spatial[0] ?? layers[0];
}

export function ImageView({ route, model, dataset }: { route: Route; model: ModelSummary; dataset: string }) {
  const layers = useAsync(() => loadLayers(model.name), [model.name]);
  const pick = (image: string) => navigate({ model: model.name, dataset: route.dataset, view: 'image', layer: route.layer, image });
  return (
    <section className="image-view">
      <aside>
        <ImagePicker dataset={dataset} selected={route.image} onPick={pick} />
      </aside>
      <div className="image-main">
        {!route.image ? (
          <p className="muted">Pick an image of {dataset} on the left, or upload one.</p>
        ) : (
          <Async state={layers} what="layers">
            {(list) => <ImageDetails key={route.image} route={route} model={model} imageId={route.image!} layers={list} />}
          </Async>
        )}
      </div>
    </section>
  );
}

function ImagePicker({ dataset, selected, onPick }: { dataset: string; selected?: string; onPick: (id: string) => void }) {
  const [cursors, setCursors] = useState<(string | null)[]>([null]); // one per page seen: Back pops
  useEffect(() => setCursors([null]), [dataset]);
  const after = cursors[cursors.length - 1];
  const images = useAsync(
    (signal) =>
      query<{ dataset: { size: number; images: Connection<ImageInfo> } }>(
        `query Images($dataset: String!, $after: String) { dataset(name: $dataset) { size images(first: 30, after: $after) { ${PAGE('id name label url width height dataset')} } } }`,
        { dataset, after },
        signal,
      ).then((d) => d.dataset),
    [dataset, after],
  );
  const [upload, setUpload] = useState<{ busy: boolean; error?: ApiError }>({ busy: false });
  const onFile = async (e: ChangeEvent<HTMLInputElement>) => {
    const file = e.target.files?.[0];
    e.target.value = '';
    if (!file) return;
    setUpload({ busy: true });
    try {
      const base64 = await fileToBase64(file);
      const d = await query<{ uploadImage: { id: string } }>('mutation Upload($base64: String!) { uploadImage(base64: $base64) { id } }', { base64 });
      try {
        sessionStorage.setItem(uploadKey(d.uploadImage.id), `data:${file.type || 'image/png'};base64,${base64}`);
      } catch {
        // over the storage quota: the image is still analysed, only not shown
      }
      setUpload({ busy: false });
      onPick(d.uploadImage.id);
    } catch (err) {
      setUpload({ busy: false, error: asApiError(err) });
    }
  };
  const page = cursors.length;
  return (
    <div className="picker">
      <h2>Images</h2>
      <label className="upload">
        Upload an image (PNG, JPEG, WebP) <input type="file" accept="image/png,image/jpeg,image/webp" onChange={onFile} disabled={upload.busy} />
      </label>
      {upload.busy && <Loading what="the upload" />}
      {upload.error && <ErrorBox error={upload.error} title="Upload" />}
      <Async state={images} what="images">
        {(d) => (
          <>
            <div className="thumbs">
              {d.images.nodes.map((img) => (
                <button
                  type="button"
                  key={img.id}
                  className={`thumb${img.id === selected ? ' selected' : ''}`}
                  onClick={() => onPick(img.id)}
                  title={`${img.name} (${img.label ?? 'no label'})`}
                >
                  {img.url && <Pic src={img.url} alt={img.name ?? ''} />}
                </button>
              ))}
            </div>
            <div className="pager">
              <button type="button" className="small" disabled={page === 1} onClick={() => setCursors((c) => c.slice(0, -1))}>
                ← Back
              </button>
              <span className="muted">
                page {page} of {Math.max(1, Math.ceil(d.size / 30))}
              </span>
              <button
                type="button"
                className="small"
                disabled={!d.images.pageInfo.hasNextPage}
                onClick={() => setCursors((c) => [...c, d.images.pageInfo.endCursor])}
              >
                Next →
              </button>
            </div>
          </>
        )}
      </Async>
    </div>
  );
}

interface Prediction {
  classIndex: number;
  label: string;
  probability: number;
}

function ImageDetails({ route, model, imageId, layers }: { route: Route; model: ModelSummary; imageId: string; layers: LayerInfo[] }) {
  const info = useAsync(
    (signal) =>
      query<{ node: ImageInfo }>(
        'query Image($id: ID!) { node(id: $id) { ... on Image { id name label url width height dataset } } }',
        { id: imageId },
        signal,
      ).then((d) => d.node),
    [imageId],
  );
  const predictions = useAsync(
    (signal) =>
      query<{ model: { predict: Prediction[] } }>(
        'query Predict($model: String!, $id: ID!) { model(name: $model) { predict(image: { id: $id }, top: 5) { classIndex label probability } } }',
        { model: model.name, id: imageId },
        signal,
      ).then((d) => d.model.predict),
    [model.name, imageId],
  );
  const layer = layers.find((l) => l.name === route.layer) ?? defaultLayer(layers);
  const [box, setBox] = useState<Box>();
  useEffect(() => setBox(undefined), [route.unit?.channel, route.unit?.x, route.unit?.y, layer?.name]);
  const src = info.data ? (info.data.url ?? uploadedSrc(imageId)) : null;
  return (
    <>
      <div className="image-head">
        <Async state={info} what="the image">
          {(img) => (
            <figure>
              <BoxedImage src={src} alt={img.name ?? 'uploaded image'} width={img.width} height={img.height} box={box} size={196} className="the-image" />
              <figcaption>
                <b>{img.name ?? 'uploaded image'}</b> {img.label && <span className="badge">{img.label}</span>}
                <br />
                <span className="muted">
                  {img.width} × {img.height}
                  {box && ' · the clicked unit’s receptive field is boxed'}
                </span>
              </figcaption>
            </figure>
          )}
        </Async>
        <div className="predictions">
          <h2>Predictions of {model.name}</h2>
          <Async state={predictions} what="predictions">
            {(list) => (
              <ol>
                {list.map((p) => (
                  <li key={p.classIndex} className={info.data?.label === p.label ? 'correct' : ''}>
                    <span className="bar" style={{ width: `${Math.max(0.5, p.probability * 100)}%` }} />
                    <span className="pred-label">{p.label}</span>{' '}
                    <span className="pred-prob">{(p.probability * 100).toFixed(p.probability < 0.01 ? 3 : 1)} %</span>
                  </li>
                ))}
              </ol>
            )}
          </Async>
        </div>
      </div>

      <h2>
        Feature maps of <LayerPicker layers={layers} value={layer?.name} onChange={(l) => navigate({ ...route, layer: l, unit: undefined })} />
      </h2>
      {layer && (
        <FeatureMaps
          model={model.name}
          layer={layer}
          imageId={imageId}
          unit={route.unit}
          onUnit={(unit) => navigate({ ...route, layer: layer.name, unit }, true)}
        />
      )}
      {layer && <TopUnits model={model.name} layer={layer.name} imageId={imageId} onUnit={(unit) => navigate({ ...route, layer: layer.name, unit }, true)} />}
      {layer && route.unit && <UnitProjection model={model.name} dataset={route.dataset} layer={layer} imageId={imageId} unit={route.unit} onBox={setBox} />}
      <Occlusion key={`${model.name} ${imageId}`} model={model.name} imageId={imageId} />
      <InvariancePanel model={model.name} imageId={imageId} />
    </>
  );
}

interface Maps {
  shape: number[];
  gridUrl: string;
  tensorUrl: string;
  channels: { index: number; min: number; max: number; mean: number }[];
  values: Float32Array;
}

/** Every channel of a layer, drawn from its raw activations (tensorUrl): a click picks a unit. */
function FeatureMaps({
  model,
  layer,
  imageId,
  unit,
  onUnit,
}: {
  model: string;
  layer: LayerInfo;
  imageId: string;
  unit?: Route['unit'];
  onUnit: (u: NonNullable<Route['unit']>) => void;
}) {
  const maps = useAsync(
    async (signal): Promise<Maps> => {
      const d = await query<{ model: { layer: { featureMaps: Omit<Maps, 'values'> } } }>(
        'query Maps($model: String!, $layer: String!, $id: ID!) { model(name: $model) { layer(name: $layer) { featureMaps(image: { id: $id }) { shape gridUrl tensorUrl channels { index min max mean } } } } }',
        { model, layer: layer.name, id: imageId },
        signal,
      );
      const npy = await fetchNpy(d.model.layer.featureMaps.tensorUrl, signal);
      return { ...d.model.layer.featureMaps, values: npy.data };
    },
    [model, layer.name, imageId],
  );
  return (
    <Async state={maps} what="feature maps">
      {(m) => {
        const [C, H = 1, W = 1] = m.shape.length === 3 ? m.shape : [1, 1, m.shape[0]];
        const dense = m.shape.length !== 3;
        const selected = unit && m.channels[unit.channel];
        return (
          <div className="maps-panel">
            <p className="muted">
              {dense ? `${W} units, scaled together` : `${C} channels of ${H} × ${W}, each scaled to its own range`} (black = min(0, min)). Click a unit for its
              projection.{' '}
              <a href={m.gridUrl} target="_blank" rel="noreferrer">
                PNG grid
              </a>{' '}
              ·{' '}
              <a href={m.tensorUrl} download>
                .npy
              </a>
            </p>
            {selected && dense && (
              <p className="channel-stats">
                unit <b>{selected.index}</b> = <b>{fmt(selected.max)}</b>
              </p>
            )}
            {selected && !dense && (
              <p className="channel-stats">
                channel <b>{selected.index}</b>: min {fmt(selected.min)} · max {fmt(selected.max)} · mean {fmt(selected.mean)}
                {unit && (
                  <>
                    {' '}
                    · unit ({unit.x}, {unit.y}) = <b>{fmt(m.values[unit.channel * H * W + unit.y * W + unit.x] ?? NaN)}</b>
                  </>
                )}
              </p>
            )}
            {dense ? (
              <MapCanvas
                values={m.values}
                height={1}
                width={W}
                cssWidth={Math.min(900, Math.max(W * 3, 300))}
                cssHeight={28}
                unit={unit && { x: unit.channel, y: 0 }}
                onPick={(x) => onUnit({ channel: x, x: 0, y: 0 })}
                title="units"
              />
            ) : (
              <div className="maps">
                {m.channels.map((c) => (
                  <MapCanvas
                    key={c.index}
                    values={m.values.subarray(c.index * H * W, (c.index + 1) * H * W)}
                    height={H}
                    width={W}
                    cssWidth={Math.max(52, Math.min(112, W * 4))}
                    unit={unit?.channel === c.index ? unit : undefined}
                    onPick={(x, y) => onUnit({ channel: c.index, x, y })}
                    title={`channel ${c.index}: max ${fmt(c.max)}, mean ${fmt(c.mean)}`}
                    channel={c.index}
                  />
                ))}
              </div>
            )}
          </div>
        );
      }}
    </Async>
  );
}

/** One map drawn into a canvas (grey from min(0, min) to max, like the server's PNGs). */
function MapCanvas({
  values,
  width,
  height,
  cssWidth,
  cssHeight,
  unit,
  onPick,
  title,
  channel,
}: {
  values: Float32Array;
  width: number;
  height: number;
  cssWidth: number;
  cssHeight?: number;
  unit?: { x: number; y: number };
  onPick: (x: number, y: number) => void;
  title: string;
  channel?: number;
}) {
  const ref = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const ctx = ref.current?.getContext('2d');
    if (!ctx) return;
    let lo = 0;
    let hi = -Infinity;
    for (const v of values) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    const span = hi > lo ? hi - lo : 1;
    const img = ctx.createImageData(width, height);
    for (let i = 0; i < values.length; i++) {
      const g = Math.round((255 * (values[i] - lo)) / span);
      img.data.set([g, g, g, 255], i * 4);
    }
    ctx.putImageData(img, 0, 0);
  }, [values, width, height]);
  const h = cssHeight ?? (cssWidth * height) / width;
  const click = (e: MouseEvent<HTMLCanvasElement>) => {
    const r = e.currentTarget.getBoundingClientRect();
    const x = Math.min(width - 1, Math.max(0, Math.floor(((e.clientX - r.left) / r.width) * width)));
    const y = Math.min(height - 1, Math.max(0, Math.floor(((e.clientY - r.top) / r.height) * height)));
    onPick(x, y);
  };
  return (
    <div className={`map${unit ? ' selected' : ''}`} title={title} data-channel={channel}>
      <canvas ref={ref} width={width} height={height} style={{ width: cssWidth, height: h }} onClick={click} />
      {unit && (
        <span
          className="unit-marker"
          style={{ left: `${(100 * unit.x) / width}%`, top: `${(100 * unit.y) / height}%`, width: `${100 / width}%`, height: `${100 / height}%` }}
        />
      )}
      {channel !== undefined && <span className="map-index">{channel}</span>}
    </div>
  );
}

interface ProjectionInfo {
  imageUrl: string;
  crop: string;
  box: Box;
  seedValue: number;
  position: { x: number; y: number };
}

/** The deconvnet projection of the clicked unit (its filter, seeded at that position). */
function UnitProjection({
  model,
  dataset,
  layer,
  imageId,
  unit,
  onBox,
}: {
  model: string;
  dataset?: string;
  layer: LayerInfo;
  imageId: string;
  unit: NonNullable<Route['unit']>;
  onBox: (b: Box) => void;
}) {
  const spatial = layer.outputShape.length === 3;
  const state = useAsync(
    (signal) =>
      query<{ model: { layer: { filter: { projection: ProjectionInfo } } } }>(
        `query UnitProjection($model: String!, $layer: String!, $filter: Int!, $id: ID!, $seed: SeedMode!, $position: PositionInput) {
          model(name: $model) { layer(name: $layer) { filter(index: $filter) {
            projection(image: { id: $id }, seed: $seed, position: $position) { imageUrl crop: imageUrl(crop: true) box { x y width height } seedValue position { x y } } } } } }`,
        {
          model,
          layer: layer.name,
          filter: unit.channel,
          id: imageId,
          seed: spatial ? 'POSITION' : 'MAX',
          position: spatial ? { x: unit.x, y: unit.y } : null,
        },
        signal,
      ).then((d) => d.model.layer.filter.projection),
    [model, layer.name, imageId, unit.channel, unit.x, unit.y],
  );
  useEffect(() => {
    if (state.data && !state.loading) onBox(state.data.box);
  }, [state.data, state.loading, onBox]);
  return (
    <section className="unit-projection">
      <h2>
        Projection of {layer.name} channel {unit.channel}
        {spatial && ` at (${unit.x}, ${unit.y})`}
      </h2>
      <Async state={state} what="the projection">
        {(p) => (
          <div className="pair">
            <figure>
              <Pic src={p.imageUrl} alt="unit projection" className="projection-full" size={196} />
              <figcaption>Deconvnet projection (grey = 0)</figcaption>
            </figure>
            <figure>
              <Pic src={p.crop} alt="unit projection, cropped" className="projection-crop" size={112} />
              <figcaption>
                Cropped to the receptive field
                <br />
                {p.box.width} × {p.box.height} at ({p.box.x}, {p.box.y})
              </figcaption>
            </figure>
            <div className="muted">
              activation sent down: <b>{fmt(p.seedValue)}</b>
              <br />
              <Link to={{ model, dataset, view: 'layers', layer: layer.name, filter: unit.channel }}>Top 9 of this filter →</Link>
            </div>
          </div>
        )}
      </Async>
    </section>
  );
}

interface OcclusionMapInfo {
  imageUrl: string;
  min: number;
  max: number;
}

interface OcclusionInfo {
  size: number;
  stride: number;
  width: number;
  height: number;
  targetLabel: string;
  unoccludedProbability: number;
  unoccludedActivation: number;
  strongestMap: { layer: string; channel: number; maxActivation: number };
  strongestMapActivation: OcclusionMapInfo;
  classProbability: OcclusionMapInfo;
  topClass: OcclusionMapInfo;
  topClassLegend: { classIndex: number; label: string; color: string; positions: number }[];
  projection: { imageUrl: string } | null;
}

/** ZF Fig. 7, on demand (it runs the model once per occluder position). */
function Occlusion({ model, imageId }: { model: string; imageId: string }) {
  const [asked, setAsked] = useState(false);
  return (
    <section className="occlusion">
      <h2>
        Occlusion sensitivity (ZF Fig. 7){' '}
        {!asked && (
          <button type="button" onClick={() => setAsked(true)}>
            Compute occlusion maps
          </button>
        )}
      </h2>
      {asked && <OcclusionMaps model={model} imageId={imageId} />}
    </section>
  );
}

function OcclusionMaps({ model, imageId }: { model: string; imageId: string }) {
  // request, not query: the projection may fail alone (a null with its error) and the maps still show.
  const state = useAsync(
    async (signal) => {
      const r = await request<{ model: { occlusion: OcclusionInfo } }>(
        `query Occlusion($model: String!, $id: ID!) { model(name: $model) { occlusion(image: { id: $id }) {
          size stride width height targetLabel unoccludedProbability unoccludedActivation
          strongestMap { layer channel maxActivation }
          strongestMapActivation { imageUrl min max } classProbability { imageUrl min max } topClass { imageUrl min max }
          topClassLegend { classIndex label color positions } projection { imageUrl } } } }`,
        { model, id: imageId },
        signal,
      );
      if (!r.data?.model) throw new ApiError(r.errors);
      return { occlusion: r.data.model.occlusion, errors: r.errors.length ? new ApiError(r.errors) : undefined };
    },
    [model, imageId],
  );
  return (
    <Async state={state} what="occlusion maps">
      {({ occlusion: o, errors }) => (
        <>
          <p className="muted">
            A {o.size} × {o.size} grey square slid with stride {o.stride} ({o.width} × {o.height} positions).
          </p>
          {errors && <ErrorBox error={errors} />}
          <div className="occlusion-maps">
            <figure>
              <Pic src={o.strongestMapActivation.imageUrl} alt="strongest feature map activation" size={168} />
              <figcaption>
                (b) total activation of {o.strongestMap.layer} channel {o.strongestMap.channel} ({fmt(o.strongestMapActivation.min)} …{' '}
                {fmt(o.strongestMapActivation.max)}; unoccluded {fmt(o.unoccludedActivation)})
              </figcaption>
            </figure>
            {o.projection && (
              <figure>
                <Pic src={o.projection.imageUrl} alt="projection of the strongest feature map" size={168} />
                <figcaption>(c) that map’s projection</figcaption>
              </figure>
            )}
            <figure>
              <Pic src={o.classProbability.imageUrl} alt="class probability" size={168} />
              <figcaption>
                (d) p({o.targetLabel}) (unoccluded {(o.unoccludedProbability * 100).toFixed(1)} %)
              </figcaption>
            </figure>
            <figure>
              <Pic src={o.topClass.imageUrl} alt="most probable class" size={168} />
              <figcaption>
                (e) most probable class
                <ul className="legend">
                  {o.topClassLegend.map((c) => (
                    <li key={c.classIndex}>
                      <span className="swatch" style={{ background: c.color }} /> {c.label} ({c.positions})
                    </li>
                  ))}
                </ul>
              </figcaption>
            </figure>
          </div>
        </>
      )}
    </Async>
  );
}
