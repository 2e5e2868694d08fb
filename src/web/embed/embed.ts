/**
 * convscope's views as web components for any page or dashboard (served as /embed.js):
 *
 *   <script type="module" src="http://localhost:4000/embed.js"></script>
 *   <convscope-filters model="fashion-zfnet" layer="/conv1/Conv"></convscope-filters>
 *   <convscope-projection model="…" layer="…" filter="3" image="<image ID>"></convscope-projection>
 *   <convscope-top9 model="…" layer="…" filter="3" dataset="fashion-mnist-demo"></convscope-top9>
 *   <convscope-occlusion model="…" image="<image ID>"></convscope-occlusion>
 *
 * Each calls the public API (the typed client, ../client/client.ts) of `server` (default: the
 * server /embed.js came from), with `api-key` when the server needs one. Pictures are loaded
 * with crossorigin="anonymous", so a page may draw them into a canvas. The element's
 * `data-state` is loading, ready or error (with the error's code and message shown).
 */
import { ConvscopeClient, ConvscopeError } from '../client/client';

const ORIGIN = new URL(import.meta.url).origin;

const STYLE = `
  :host { display: inline-block; font: 12px system-ui, sans-serif; }
  img { image-rendering: pixelated; display: block; }
  .grid { display: grid; grid-template-columns: repeat(3, auto); gap: 4px; }
  .pair { display: flex; gap: 2px; }
  .maps { display: flex; gap: 6px; }
  .error { color: #b00020; max-width: 40em; }
`;

abstract class ConvscopeView extends HTMLElement {
  /** The attributes the view reads; any change renders it again. */
  static readonly watched: string[] = [];
  static get observedAttributes() {
    return ['server', 'api-key', ...this.watched];
  }
  private readonly root = this.attachShadow({ mode: 'open' });
  private generation = 0;

  connectedCallback() {
    void this.update();
  }
  attributeChangedCallback() {
    if (this.isConnected) void this.update();
  }

  protected get client(): ConvscopeClient {
    return new ConvscopeClient({ server: this.getAttribute('server') ?? ORIGIN, apiKey: this.getAttribute('api-key') ?? undefined });
  }

  /** An attribute the view needs (an error names it when missing). */
  protected need(name: string): string {
    const value = this.getAttribute(name);
    if (value === null || value === '')
      throw new ConvscopeError([{ message: `<${this.localName}> needs the attribute ${name}`, extensions: { code: 'BAD_USER_INPUT' } }]);
    return value;
  }

  protected img(client: ConvscopeClient, url: string, alt: string, width?: number): HTMLImageElement {
    const img = document.createElement('img');
    img.crossOrigin = 'anonymous';
    img.src = client.url(url);
    img.alt = alt;
    if (width) img.width = width;
    return img;
  }

  /** The view's content for the current attributes. */
  protected abstract render(client: ConvscopeClient): Promise<Node>;

  private async update() {
    const generation = ++this.generation;
    this.dataset.state = 'loading';
    let content: Node;
    let state = 'ready';
    try {
      content = await this.render(this.client);
    } catch (e) {
      state = 'error';
      const error = e instanceof ConvscopeError ? e : new ConvscopeError([{ message: String(e) }]);
      content = Object.assign(document.createElement('div'), { className: 'error', textContent: error.message });
      this.dataset.code = error.code ?? '';
    }
    if (generation !== this.generation) return; // attributes changed meanwhile
    const style = Object.assign(document.createElement('style'), { textContent: STYLE });
    this.root.replaceChildren(style, content);
    this.dataset.state = state;
  }
}

/** A layer's filters as one picture (ZF Fig. 6): model, layer. */
class FiltersView extends ConvscopeView {
  static readonly watched = ['model', 'layer'];
  protected async render(client: ConvscopeClient) {
    const [model, layer] = [this.need('model'), this.need('layer')];
    const url = await client.filterGrid(model, layer);
    if (!url) throw new ConvscopeError([{ message: `layer "${layer}" has no weights to show`, extensions: { code: 'NOT_FOUND' } }]);
    return this.img(client, url, `filters of ${layer}`);
  }
}

/** A filter's projection on an image (ZF Fig. 1): model, layer, filter, image (an image ID), crop. */
class ProjectionView extends ConvscopeView {
  static readonly watched = ['model', 'layer', 'filter', 'image', 'crop'];
  protected async render(client: ConvscopeClient) {
    const p = await client.projection({
      model: this.need('model'),
      layer: this.need('layer'),
      filter: Number(this.need('filter')),
      image: this.need('image'),
      crop: this.hasAttribute('crop'),
    });
    return this.img(client, p.imageUrl, `projection of filter ${this.getAttribute('filter')}`);
  }
}

/** A filter's top 9 over a dataset, each patch beside its projection (ZF Fig. 2): model, layer, filter, dataset. */
class Top9View extends ConvscopeView {
  static readonly watched = ['model', 'layer', 'filter', 'dataset'];
  protected async render(client: ConvscopeClient) {
    const top = await client.topActivations({
      model: this.need('model'),
      layer: this.need('layer'),
      filter: Number(this.need('filter')),
      dataset: this.need('dataset'),
      first: 9,
    });
    const grid = Object.assign(document.createElement('div'), { className: 'grid' });
    for (const t of top) {
      const pair = Object.assign(document.createElement('div'), { className: 'pair', title: `#${t.rank} ${t.image.name ?? ''} ${t.value.toFixed(3)}` });
      pair.append(this.img(client, t.patchUrl, `patch ${t.rank}`, 48), this.img(client, t.projection.imageUrl, `projection ${t.rank}`, 48));
      grid.append(pair);
    }
    return grid;
  }
}

/** Occlusion sensitivity of an image (ZF Fig. 7): model, image, and optionally layer, size, stride. */
class OcclusionView extends ConvscopeView {
  static readonly watched = ['model', 'image', 'layer', 'size', 'stride'];
  protected async render(client: ConvscopeClient) {
    const int = (name: string) => (this.hasAttribute(name) ? Number(this.getAttribute(name)) : undefined);
    const o = await client.occlusion({
      model: this.need('model'),
      image: this.need('image'),
      layer: this.getAttribute('layer') ?? undefined,
      size: int('size'),
      stride: int('stride'),
    });
    const maps = Object.assign(document.createElement('div'), { className: 'maps' });
    maps.append(
      this.img(client, o.strongestMapActivation.imageUrl, 'activation of the strongest map'),
      this.img(client, o.classProbability.imageUrl, 'probability of the class'),
      this.img(client, o.topClass.imageUrl, 'most probable class'),
    );
    return maps;
  }
}

const VIEWS: Record<string, CustomElementConstructor> = {
  'convscope-filters': FiltersView,
  'convscope-projection': ProjectionView,
  'convscope-top9': Top9View,
  'convscope-occlusion': OcclusionView,
};
for (const [name, view] of Object.entries(VIEWS)) if (!customElements.get(name)) customElements.define(name, view);

export { ConvscopeClient, ConvscopeError };
