/** A layer's filters as a grid: kernels as images for a conv that reads the image (ZF Fig. 6), else each filter's top-1 patch. */
import { allPages, ApiError, Connection, PAGE, query, request, Result } from '../api';
import { Async, ErrorBox, IndexPanel, Link, Loading, Pic, useAsync, useIndexEpoch } from '../components';
import { navigate, Route } from '../route';
import { LayerInfo, loadLayers, ModelSummary, shape } from './models';

interface FilterTile {
  index: number;
  weights: { imageUrl: string | null } | null;
}

interface Thumb {
  index: number;
  top: { nodes: { patchUrl: string; value: number; image: { name: string | null } }[] } | null;
}

/** Picks a layer of the model: used by the layer, filter and image views. */
export function LayerPicker({
  layers,
  value,
  onChange,
  filter,
}: {
  layers: LayerInfo[];
  value?: string;
  onChange: (name: string) => void;
  filter?: (l: LayerInfo) => boolean;
}) {
  return (
    <select aria-label="layer" value={value ?? ''} onChange={(e) => onChange(e.target.value)}>
      {!value && <option value="">— layer —</option>}
      {layers.filter(filter ?? (() => true)).map((l) => (
        <option key={l.name} value={l.name}>
          {l.name} ({l.kind}, {shape(l.outputShape)})
        </option>
      ))}
    </select>
  );
}

export function LayerView({ route, model, dataset }: { route: Route; model: ModelSummary; dataset: string }) {
  const name = route.layer!;
  const layers = useAsync(() => loadLayers(model.name), [model.name]);
  const epoch = useIndexEpoch();
  const filters = useAsync(
    (signal) =>
      allPages((after) =>
        query<{ model: { layer: { filters: Connection<FilterTile> } } }>(
          `query Filters($model: String!, $layer: String!, $after: String) { model(name: $model) { layer(name: $layer) { filters(first: 100, after: $after) { ${PAGE('index weights { imageUrl }')} } } } }`,
          { model: model.name, layer: name, after },
          signal,
        ).then((d) => d.model.layer.filters),
      ),
    [model.name, name],
  );
  // Top-1 thumbnails need the index: asked apart, so that INDEX_NOT_BUILT leaves the grid usable.
  const thumbs = useAsync(
    async (signal) => {
      const byIndex = new Map<number, Thumb['top']>();
      let after: string | null = null;
      for (;;) {
        const { data, errors }: Result<{ model: { layer: { filters: Connection<Thumb> } } }> = await request(
          `query Thumbs($model: String!, $layer: String!, $dataset: String!, $after: String) { model(name: $model) { layer(name: $layer) { filters(first: 100, after: $after) { ${PAGE('index top: topActivations(dataset: $dataset, first: 1) { nodes { patchUrl value image { name } } }')} } } } }`,
          { model: model.name, layer: name, dataset, after },
          signal,
        );
        if (errors.length) throw new ApiError(errors.slice(0, 1)); // one filter's INDEX_NOT_BUILT says it for all
        const page: Connection<Thumb> = data!.model.layer.filters;
        for (const f of page.nodes) byIndex.set(f.index, f.top);
        if (!page.pageInfo.hasNextPage) return byIndex;
        after = page.pageInfo.endCursor;
      }
    },
    [model.name, name, dataset, epoch],
  );
  const layer = layers.data?.find((l) => l.name === name);
  return (
    <section>
      <nav className="crumbs">
        <Link to={{ model: model.name, dataset: route.dataset, view: 'layers' }}>{model.name}</Link> ›{' '}
        {layers.data ? <LayerPicker layers={layers.data} value={name} onChange={(l) => navigate({ ...route, layer: l })} /> : name}
      </nav>
      {layers.error && <ErrorBox error={layers.error} />}
      {layer && (
        <p className="muted">
          {layer.kind} ({layer.op}) · output {shape(layer.outputShape)} · {layer.filterCount} filters · receptive field{' '}
          {layer.receptiveField.global ? 'the whole image' : `${layer.receptiveField.size} px, stride ${layer.receptiveField.stride}`}
        </p>
      )}
      {layers.data && !layer && <ErrorBox error={new ApiError([{ message: `model "${model.name}" has no layer "${name}"`, code: 'NOT_FOUND' }])} />}
      <Async state={filters} what="filters">
        {(list) => {
          const kernels = list.some((f) => f.weights?.imageUrl);
          return (
            <>
              <h2>{kernels ? 'Kernels (ZF Fig. 6) — click one for its top-9' : 'Filters — click one for its top-9'}</h2>
              {!kernels && thumbs.loading && <Loading what="top-1 patches" />}
              {!kernels && thumbs.error && (
                <>
                  <ErrorBox error={thumbs.error} title="Top-1 patches" />
                  {thumbs.error.has('INDEX_NOT_BUILT') && layer && <IndexPanel model={model.name} dataset={dataset} layer={layer} />}
                </>
              )}
              <div className={`filter-grid${kernels ? ' kernels' : ''}`}>
                {list.map((f) => {
                  const top = thumbs.data?.get(f.index)?.nodes[0];
                  return (
                    <Link
                      key={f.index}
                      to={{ model: model.name, dataset: route.dataset, view: 'layers', layer: name, filter: f.index }}
                      className="filter-tile"
                      title={top ? `filter ${f.index}: top-1 ${top.value.toFixed(3)} on ${top.image.name}` : `filter ${f.index}`}
                    >
                      {f.weights?.imageUrl ? (
                        <Pic src={f.weights.imageUrl} alt={`kernel ${f.index}`} />
                      ) : top ? (
                        <Pic src={top.patchUrl} alt={`filter ${f.index} top-1 patch`} />
                      ) : (
                        <span className="blank" />
                      )}
                      <span className="filter-index">{f.index}</span>
                    </Link>
                  );
                })}
              </div>
            </>
          );
        }}
      </Async>
    </section>
  );
}
