/** The model list, and a model's layers (kind, output shape, receptive field). */
import { allPages, Connection, PAGE, query } from '../api';
import { Async, IndexPanel, Link, Pic, useAsync } from '../components';
import { Route } from '../route';

export interface ModelSummary {
  name: string;
  description: string | null;
  epoch: number | null;
  inputShape: number[];
  fileBytes: number;
  labels: string[];
  snapshotOf: { name: string } | null;
  snapshots: { name: string; epoch: number | null }[];
}

export interface Catalog {
  models: ModelSummary[];
  datasets: { name: string; size: number }[];
  modelErrors: { file: string; message: string }[];
}

export async function loadCatalog(signal: AbortSignal): Promise<Catalog> {
  const models = allPages((after) =>
    query<{ models: Connection<ModelSummary> }>(
      `query Models($after: String) { models(first: 100, after: $after) { ${PAGE('name description epoch inputShape fileBytes labels snapshotOf { name } snapshots { name epoch }')} } }`,
      { after },
      signal,
    ).then((d) => d.models),
  );
  const datasets = allPages((after) =>
    query<{ datasets: Connection<{ name: string; size: number }> }>(
      `query Datasets($after: String) { datasets(first: 100, after: $after) { ${PAGE('name size')} } }`,
      { after },
      signal,
    ).then((d) => d.datasets),
  );
  const errors = query<{ modelErrors: Catalog['modelErrors'] }>('{ modelErrors { file message } }', {}, signal);
  return { models: await models, datasets: await datasets, modelErrors: (await errors).modelErrors };
}

export interface LayerInfo {
  index: number;
  name: string;
  kind: string;
  op: string;
  outputShape: number[];
  filterCount: number;
  filterGridUrl: string | null;
  receptiveField: { size: number; stride: number; global: boolean };
}

const layerCache = new Map<string, Promise<LayerInfo[]>>();

/** A model's layers in topological order (fetched once per page load). */
export function loadLayers(model: string): Promise<LayerInfo[]> {
  let layers = layerCache.get(model);
  if (!layers) {
    layers = allPages((after) =>
      query<{ model: { layers: Connection<LayerInfo> } }>(
        `query Layers($model: String!, $after: String) { model(name: $model) { layers(first: 100, after: $after) { ${PAGE('index name kind op outputShape filterCount filterGridUrl receptiveField { size stride global }')} } } }`,
        { model, after },
      ).then((d) => d.model.layers),
    );
    layers.catch(() => layerCache.delete(model)); // a failure is not remembered
    layerCache.set(model, layers);
  }
  return layers;
}

export const shape = (s: number[]) => s.join(' × ');

export function ModelList({ catalog, dataset }: { catalog: Catalog; dataset?: string }) {
  const roots = catalog.models.filter((m) => !m.snapshotOf);
  return (
    <section>
      <h1>Models</h1>
      {roots.length === 0 && <p className="muted">No models loaded (MODELS_DIR).</p>}
      <div className="cards">
        {roots.map((m) => (
          <Link key={m.name} to={{ model: m.name, dataset, view: 'layers' }} className="card model-card">
            <h2>{m.name}</h2>
            {m.description && <p>{m.description}</p>}
            <p className="muted">
              input {shape(m.inputShape)} · {m.labels.length} classes · {(m.fileBytes / 1024 / 1024).toFixed(1)} MiB
              {m.snapshots.length > 0 && (
                <>
                  {' '}
                  · {m.snapshots.length} training snapshots (epochs {m.snapshots.map((s) => s.epoch ?? '?').join(', ')})
                </>
              )}
            </p>
          </Link>
        ))}
      </div>
      {catalog.modelErrors.length > 0 && (
        <div className="error" role="alert">
          <strong>Model files that failed to load</strong>
          <ul>
            {catalog.modelErrors.map((e) => (
              <li key={e.file}>
                <code>{e.file}</code>: {e.message}
              </li>
            ))}
          </ul>
        </div>
      )}
    </section>
  );
}

export function LayersView({ route, model, dataset }: { route: Route; model: ModelSummary; dataset: string }) {
  const layers = useAsync(() => loadLayers(model.name), [model.name]);
  const firstConv = layers.data?.find((l) => l.filterGridUrl);
  return (
    <section>
      <h1>
        {model.name}{' '}
        {model.snapshotOf && (
          <span className="muted">
            snapshot of <Link to={{ ...route, model: model.snapshotOf.name }}>{model.snapshotOf.name}</Link>
          </span>
        )}
      </h1>
      {model.description && <p className="lead">{model.description}</p>}
      <IndexPanel model={model.name} dataset={dataset} compact />
      <Async state={layers} what="layers">
        {(list) => (
          <div className="layers-and-kernels">
            <table className="layers">
              <thead>
                <tr>
                  <th>#</th>
                  <th>Layer</th>
                  <th>Kind</th>
                  <th>Op</th>
                  <th>Output</th>
                  <th>Filters</th>
                  <th title="receptive field in input pixels: size / stride">Receptive field</th>
                </tr>
              </thead>
              <tbody>
                {list.map((l) => (
                  <tr key={l.name} className={`kind-${l.kind.toLowerCase()}`}>
                    <td>{l.index}</td>
                    <td>
                      <Link to={{ model: model.name, dataset: route.dataset, view: 'layers', layer: l.name }}>{l.name}</Link>
                    </td>
                    <td>
                      <span className="kind">{l.kind}</span>
                    </td>
                    <td>{l.op}</td>
                    <td>{shape(l.outputShape)}</td>
                    <td>{l.filterCount}</td>
                    <td>{l.receptiveField.global ? `global (${l.receptiveField.size})` : `${l.receptiveField.size} px / ${l.receptiveField.stride}`}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            {firstConv?.filterGridUrl && (
              <figure className="kernels">
                <Link to={{ model: model.name, dataset: route.dataset, view: 'layers', layer: firstConv.name }}>
                  <Pic src={firstConv.filterGridUrl} alt={`kernels of ${firstConv.name}`} />
                </Link>
                <figcaption>
                  The {firstConv.filterCount} kernels of {firstConv.name}, as images (ZF Fig. 6)
                </figcaption>
              </figure>
            )}
          </div>
        )}
      </Async>
    </section>
  );
}
