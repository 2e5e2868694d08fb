/**
 * The browser entry of the offline GraphiQL page served at GET /graphql. Bundled by
 * scripts/build-web.mjs with esbuild into dist/web/graphiql/ (no CDN: the monaco web
 * workers are bundled too and loaded from the same folder as this script).
 */
import { createRoot } from 'react-dom/client';
import { GraphiQL } from 'graphiql';
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import 'graphiql/style.css';
import './page.css';

// Monaco (the editor in GraphiQL 5) asks for a web worker per language: 'graphql' (monaco-graphql:
// validation, completion), 'json' (the variables and headers editors) and the generic editor
// worker. graphiql's own `graphiql/setup-workers/*` helpers rely on vite `?worker` imports, on
// webpack resolving `new URL('monaco-editor/...', import.meta.url)`, or on esm.sh, none of which
// work with esbuild offline; so the build script bundles each worker into a classic script next
// to this one and passes their content-hashed file names in __GRAPHIQL_WORKERS__.
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

const DEFAULT_QUERY = `# convscope: what a trained CNN has learned.
#
# Run: Ctrl-Enter or ▶.  Complete: Ctrl-Space.
# Docs: the top icon on the left.

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
