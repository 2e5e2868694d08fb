/**
 * The browser entry of the offline GraphiQL page served at GET /graphql. Bundled by
 * scripts/build-graphiql.mjs with esbuild into dist/web/graphiql/ (no CDN: the monaco web
 * workers are bundled too and loaded from the same folder as this script).
 */
import { createRoot } from 'react-dom/client';
import { GraphiQL } from 'graphiql';
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import 'graphiql/style.css';
import './page.css';

// Monaco (the editor in GraphiQL 5) asks for a web worker per language. Each worker is a
// separate classic-script bundle next to this one; graphiql's own `setup-workers/*` helpers
// rely on vite `?worker` imports, webpack `new URL()` or esm.sh, none of which apply here.
// Their (content-hashed) file names come from the build script.
declare const __GRAPHIQL_WORKERS__: Record<'editor' | 'graphql' | 'json', string>;
const workerUrl = (name: keyof typeof __GRAPHIQL_WORKERS__) => new URL(`./${__GRAPHIQL_WORKERS__[name]}`, import.meta.url).href;
(globalThis as unknown as { MonacoEnvironment: unknown }).MonacoEnvironment = {
  getWorker(_workerId: string, label: string): Worker {
    switch (label) {
      case 'graphql':
        return new Worker(workerUrl('graphql'), { name: 'graphql' });
      case 'json':
        return new Worker(workerUrl('json'), { name: 'json' });
      default:
        return new Worker(workerUrl('editor'), { name: 'editor' });
    }
  },
};

const DEFAULT_QUERY = `# convscope: what a trained CNN has learned, over GraphQL.
#
# Run with Ctrl-Enter or the ▶ button. Ctrl-Space completes;
# the Docs panel (book icon, left) lists every type and field.

query ModelsAndLayers {
  models {
    totalCount
    nodes {
      name
      inputShape
      layers(first: 50) {
        totalCount
        nodes {
          index
          name
          kind
          op
          outputShape
          filterCount
        }
      }
    }
  }
}
`;

const fetcher = createGraphiQLFetcher({ url: new URL('/graphql', window.location.href).href });

const root = document.getElementById('graphiql');
if (!root) throw new Error('missing #graphiql element');
createRoot(root).render(<GraphiQL fetcher={fetcher} defaultQuery={DEFAULT_QUERY} />);
