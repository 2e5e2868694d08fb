/**
 * The gallery served at / : a model explored the way Zeiler & Fergus show it (layers, kernels,
 * top-9 patches and projections, training evolution, an image's feature maps, occlusion), using
 * only the public GraphQL API. Bundled by scripts/build-web.mjs into dist/web/gallery/.
 */
import { createRoot } from 'react-dom/client';
import { asApiError, query } from './api';
import { Async, ErrorBox, Link, useAsync } from './components';
import { navigate, Route, useRoute } from './route';
import { CompareView } from './views/compare';
import { FilterView } from './views/filter';
import { ImageView } from './views/image';
import { LayerView } from './views/layer';
import { Catalog, LayersView, loadCatalog, ModelList } from './views/models';
import './gallery.css';

function App() {
  const route = useRoute();
  const catalog = useAsync(loadCatalog, []);
  const dataset = route.dataset ?? catalog.data?.datasets[0]?.name;
  const go = (patch: Partial<Route>) => navigate({ ...route, ...patch });
  return (
    <>
      <header className="top">
        <Link to={{ view: 'layers' }} className="brand">
          convscope <span>gallery</span>
        </Link>
        {catalog.data && (
          <nav className="pickers">
            <label>
              Model{' '}
              <select
                aria-label="model"
                value={route.model ?? ''}
                onChange={(e) => navigate({ view: route.view, model: e.target.value || undefined, dataset: route.dataset, image: route.image })}
              >
                <option value="">— choose —</option>
                {route.model && !catalog.data.models.some((m) => m.name === route.model) && <option value={route.model}>{route.model}</option>}
                {catalog.data.models.map((m) => (
                  <option key={m.name} value={m.name}>
                    {m.name}
                  </option>
                ))}
              </select>
            </label>
            <label>
              Dataset{' '}
              <select aria-label="dataset" value={dataset ?? ''} onChange={(e) => go({ dataset: e.target.value })}>
                {catalog.data.datasets.map((d) => (
                  <option key={d.name} value={d.name}>
                    {d.name} ({d.size})
                  </option>
                ))}
              </select>
            </label>
            {route.model && (
              <span className="tabs">
                <Link
                  to={{ model: route.model, dataset: route.dataset, view: 'layers', layer: route.layer }}
                  className={route.view === 'layers' ? 'active' : ''}
                >
                  Layers &amp; filters
                </Link>
                <Link
                  to={{ model: route.model, dataset: route.dataset, view: 'image', layer: route.layer, image: route.image }}
                  className={route.view === 'image' ? 'active' : ''}
                >
                  Image
                </Link>
                <Link
                  to={{ model: route.model, dataset: route.dataset, view: 'compare', layer: route.layer }}
                  className={route.view === 'compare' ? 'active' : ''}
                >
                  Compare
                </Link>
              </span>
            )}
          </nav>
        )}
        <a className="api-link" href="/graphql">
          GraphiQL
        </a>
      </header>
      <main>
        <Async state={catalog} what="models">
          {(cat) => <Body route={route} catalog={cat} dataset={dataset} />}
        </Async>
      </main>
    </>
  );
}

function Body({ route, catalog, dataset }: { route: Route; catalog: Catalog; dataset?: string }) {
  if (!route.model) return <ModelList catalog={catalog} dataset={route.dataset} />;
  const model = catalog.models.find((m) => m.name === route.model);
  if (!model) {
    // Ask the server anyway: its NOT_FOUND error names the models it has.
    return <UnknownModel name={route.model} />;
  }
  if (!dataset) return <p className="muted">No datasets on this server: the top-9 views and the image picker need one (DATASETS_DIR).</p>;
  if (route.view === 'image') return <ImageView route={route} model={model} dataset={dataset} />;
  if (route.view === 'compare') return <CompareView route={route} model={model} dataset={dataset} catalog={catalog} />;
  if (route.layer && route.filter !== undefined) return <FilterView route={route} model={model} dataset={dataset} />;
  if (route.layer) return <LayerView route={route} model={model} dataset={dataset} />;
  return <LayersView route={route} model={model} dataset={dataset} />;
}

function UnknownModel({ name }: { name: string }) {
  const state = useAsync(
    (signal) => query<{ model: { name: string } }>('query Model($name: String!) { model(name: $name) { name } }', { name }, signal),
    [name],
  );
  return (
    <section>
      <h1>Model {name}</h1>
      <Async state={state} what="the model">
        {() => <p>The model list has changed: reload the page.</p>}
      </Async>
      <p>
        <Link to={{ view: 'layers' }}>All models</Link>
      </p>
    </section>
  );
}

const root = document.getElementById('gallery');
if (!root) throw new Error('missing #gallery element');
createRoot(root).render(<App />);

// Errors outside React (a failed dynamic import, a bug in a handler) are shown too.
window.addEventListener('unhandledrejection', (e) => showFatal(e.reason));
function showFatal(reason: unknown) {
  const div = document.createElement('div');
  document.body.prepend(div);
  createRoot(div).render(<ErrorBox error={asApiError(reason)} title="Unexpected error" />);
}
