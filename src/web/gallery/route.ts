/**
 * The page's state lives in the URL's query string, so that every view is a deep link:
 *   /?model=fashion-zfnet&layer=/relu5/Relu&filter=3          a filter's top-9
 *   /?model=fashion-zfnet&view=image&image=<id>&layer=…&unit=5,3,4   an image, unit (c, x, y) clicked
 *   /?model=fashion-zfnet&view=compare&other=fashion-zfnet@epoch-01&layer=…   two models unit by unit
 */
import { useSyncExternalStore } from 'react';

export type View = 'layers' | 'image' | 'compare';

export interface Route {
  model?: string;
  dataset?: string;
  view: View;
  layer?: string;
  filter?: number;
  /** Image view: a global Image ID (dataset image or upload). */
  image?: string;
  /** Image view: the clicked unit of `layer`, channel then x, y in its feature map. */
  unit?: { channel: number; x: number; y: number };
  /** Compare view: the model compared with. */
  other?: string;
}

const int = (s: string | null): number | undefined => (s !== null && /^\d+$/.test(s) ? Number(s) : undefined);

export function parseRoute(search: string): Route {
  const p = new URLSearchParams(search);
  const unit = (p.get('unit') ?? '').split(',').map((s) => int(s.trim()));
  return {
    model: p.get('model') || undefined,
    dataset: p.get('dataset') || undefined,
    view: p.get('view') === 'image' ? 'image' : p.get('view') === 'compare' ? 'compare' : 'layers',
    layer: p.get('layer') || undefined,
    filter: int(p.get('filter')),
    image: p.get('image') || undefined,
    other: p.get('other') || undefined,
    unit: unit.length === 3 && unit.every((n) => n !== undefined) ? { channel: unit[0]!, x: unit[1]!, y: unit[2]! } : undefined,
  };
}

export function formatRoute(r: Route): string {
  const p = new URLSearchParams();
  if (r.model) p.set('model', r.model);
  if (r.dataset) p.set('dataset', r.dataset);
  if (r.view !== 'layers') p.set('view', r.view);
  if (r.layer) p.set('layer', r.layer);
  if (r.filter !== undefined) p.set('filter', String(r.filter));
  if (r.image) p.set('image', r.image);
  if (r.unit) p.set('unit', `${r.unit.channel},${r.unit.x},${r.unit.y}`);
  if (r.other) p.set('other', r.other);
  // Layer names are full of slashes: keep them readable (they are legal in a query string).
  const s = p.toString().replace(/%2F/gi, '/');
  return s ? `/?${s}` : '/';
}

const listeners = new Set<() => void>();
let current = parseRoute(window.location.search);

window.addEventListener('popstate', () => {
  current = parseRoute(window.location.search);
  listeners.forEach((l) => l());
});

/** Goes to a route (a new history entry, or `replace` the current one). */
export function navigate(r: Route, replace = false): void {
  const href = formatRoute(r);
  if (href !== window.location.pathname + window.location.search) {
    if (replace) history.replaceState(null, '', href);
    else history.pushState(null, '', href);
  }
  current = parseRoute(new URL(href, window.location.href).search);
  listeners.forEach((l) => l());
  if (!replace) window.scrollTo(0, 0);
}

export function useRoute(): Route {
  return useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => current,
  );
}
