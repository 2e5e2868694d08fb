/**
 * A typed client for convscope's GraphQL API, for frontends written in TypeScript (and, bundled,
 * for plain pages: the server serves it as /client.js). One file with no dependencies: import it,
 * or copy it into a frontend. Its operations are checked against schema.graphql by
 * test/client.test.ts, so they stay in sync with the API.
 *
 *   const api = new ConvscopeClient({ server: 'http://localhost:4000' });
 *   const { imageUrl } = await api.projection({ model: 'fashion-zfnet', layer: '/relu5/Relu', filter: 3, image: id });
 *   img.src = api.url(imageUrl);
 */

export interface ClientOptions {
  /** The server's address, e.g. http://localhost:4000 ('' = the page's own). */
  server: string;
  /** Sent as X-API-Key when the server has API_KEYS. */
  apiKey?: string;
}

export interface ApiErrorInfo {
  message: string;
  extensions?: { code?: string; [key: string]: unknown };
}

/** A request that failed: the GraphQL errors (`code` of the first, e.g. INDEX_NOT_BUILT) or the transport's. */
export class ConvscopeError extends Error {
  readonly code: string | undefined;
  constructor(readonly errors: ApiErrorInfo[]) {
    super(errors.map((e) => (e.extensions?.code ? `${e.extensions.code}: ${e.message}` : e.message)).join('\n'));
    this.name = 'ConvscopeError';
    this.code = errors[0]?.extensions?.code;
  }
}

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface ModelSummary {
  name: string;
  inputShape: number[];
  labels: string[] | null;
}

export interface LayerSummary {
  name: string;
  index: number;
  op: string;
  kind: string;
  outputShape: number[];
}

export interface ProjectionView {
  imageUrl: string;
  tensorUrl: string;
  seedValue: number;
  position: { y: number; x: number };
  box: Box;
}

export interface TopActivationView {
  rank: number;
  value: number;
  patchUrl: string;
  box: Box;
  image: { id: string; name: string | null; label: string | null; url: string | null };
  projection: { imageUrl: string };
}

export interface OcclusionView {
  size: number;
  stride: number;
  strongestMapActivation: { imageUrl: string; min: number; max: number };
  classProbability: { imageUrl: string; min: number; max: number };
  topClass: { imageUrl: string };
}

export interface JobView {
  id: string;
  state: 'QUEUED' | 'RUNNING' | 'DONE' | 'FAILED' | 'CANCELLED';
  model: string;
  dataset: string;
  imagesDone: number;
  imagesTotal: number;
}

/** Every operation the client sends, by name (test/client.test.ts validates them against the schema). */
export const OPERATIONS = {
  models: `query Models { models(first: 100) { nodes { name inputShape labels } } }`,
  layers: `query Layers($model: String!) { model(name: $model) { layers(first: 100) { nodes { name index op kind outputShape } } } }`,
  filterGrid: `query FilterGrid($model: String!, $layer: String!) { model(name: $model) { layer(name: $layer) { filterGridUrl } } }`,
  projection: `query Projection($model: String!, $layer: String!, $filter: Int!, $image: ImageInput!, $crop: Boolean!) {
    model(name: $model) { layer(name: $layer) { filter(index: $filter) { projection(image: $image) { imageUrl(crop: $crop) tensorUrl seedValue position { y x } box { x y width height } } } } }
  }`,
  topActivations: `query TopActivations($model: String!, $layer: String!, $filter: Int!, $dataset: String!, $first: Int!) {
    model(name: $model) { layer(name: $layer) { filter(index: $filter) { topActivations(dataset: $dataset, first: $first) {
      nodes { rank value patchUrl box { x y width height } image { id name label url } projection { imageUrl(crop: true) } }
    } } } }
  }`,
  occlusion: `query Occlusion($model: String!, $image: ImageInput!, $layer: String, $size: Int, $stride: Int) {
    model(name: $model) { occlusion(image: $image, layer: $layer, size: $size, stride: $stride) {
      size stride strongestMapActivation { imageUrl min max } classProbability { imageUrl min max } topClass { imageUrl }
    } }
  }`,
  uploadImage: `mutation UploadImage($base64: String!) { uploadImage(base64: $base64) { id } }`,
  buildIndex: `mutation BuildIndex($model: String!, $dataset: String!, $layers: [String!]) { buildIndex(model: $model, dataset: $dataset, layers: $layers) { id state model dataset imagesDone imagesTotal } }`,
  job: `query Job($id: ID!) { node(id: $id) { ... on Job { id state model dataset imagesDone imagesTotal } } }`,
} as const;

/** An image to look at: the ID of an uploaded or dataset image, or the file's bytes as base64. */
export type ImageRef = { id: string } | { base64: string };
const imageInput = (image: string | ImageRef) => (typeof image === 'string' ? { id: image } : image);

export class ConvscopeClient {
  readonly server: string;
  constructor(readonly options: ClientOptions) {
    this.server = options.server.replace(/\/+$/, '');
  }

  /** Any GraphQL operation; throws ConvscopeError on errors. */
  async request<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    if (this.options.apiKey) headers['x-api-key'] = this.options.apiKey;
    let body: { data?: T | null; errors?: ApiErrorInfo[] };
    try {
      const res = await fetch(`${this.server}/graphql`, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
      body = (await res.json()) as typeof body;
    } catch (e) {
      throw new ConvscopeError([{ message: e instanceof Error ? e.message : String(e), extensions: { code: 'NETWORK_ERROR' } }]);
    }
    if (body.errors?.length || !body.data) throw new ConvscopeError(body.errors ?? [{ message: 'no data' }]);
    return body.data;
  }

  /** A URL field as an absolute URL (they are paths unless the server has PUBLIC_URL). */
  url(path: string): string {
    return /^https?:\/\//.test(path) ? path : `${this.server}${path}`;
  }

  async models(): Promise<ModelSummary[]> {
    return (await this.request<{ models: { nodes: ModelSummary[] } }>(OPERATIONS.models)).models.nodes;
  }

  async layers(model: string): Promise<LayerSummary[]> {
    return (await this.request<{ model: { layers: { nodes: LayerSummary[] } } }>(OPERATIONS.layers, { model })).model.layers.nodes;
  }

  /** A layer's filters as one PNG (ZF Fig. 6); null for layers without weights. */
  async filterGrid(model: string, layer: string): Promise<string | null> {
    return (await this.request<{ model: { layer: { filterGridUrl: string | null } } }>(OPERATIONS.filterGrid, { model, layer })).model.layer.filterGridUrl;
  }

  async projection(a: { model: string; layer: string; filter: number; image: string | ImageRef; crop?: boolean }): Promise<ProjectionView> {
    const vars = { model: a.model, layer: a.layer, filter: a.filter, image: imageInput(a.image), crop: a.crop ?? false };
    return (await this.request<{ model: { layer: { filter: { projection: ProjectionView } } } }>(OPERATIONS.projection, vars)).model.layer.filter.projection;
  }

  /** A filter's top activations over a dataset (ZF Fig. 2): INDEX_NOT_BUILT until an index covers the layer. */
  async topActivations(a: { model: string; layer: string; filter: number; dataset: string; first?: number }): Promise<TopActivationView[]> {
    const vars = { model: a.model, layer: a.layer, filter: a.filter, dataset: a.dataset, first: a.first ?? 9 };
    type R = { model: { layer: { filter: { topActivations: { nodes: TopActivationView[] } } } } };
    return (await this.request<R>(OPERATIONS.topActivations, vars)).model.layer.filter.topActivations.nodes;
  }

  async occlusion(a: { model: string; image: string | ImageRef; layer?: string; size?: number; stride?: number }): Promise<OcclusionView> {
    const vars = { model: a.model, image: imageInput(a.image), layer: a.layer, size: a.size, stride: a.stride };
    return (await this.request<{ model: { occlusion: OcclusionView } }>(OPERATIONS.occlusion, vars)).model.occlusion;
  }

  /** Uploads an image (base64 of the file); its ID works in every image argument. */
  async uploadImage(base64: string): Promise<string> {
    return (await this.request<{ uploadImage: { id: string } }>(OPERATIONS.uploadImage, { base64 })).uploadImage.id;
  }

  async buildIndex(model: string, dataset: string, layers?: string[]): Promise<JobView> {
    return (await this.request<{ buildIndex: JobView }>(OPERATIONS.buildIndex, { model, dataset, layers })).buildIndex;
  }

  async job(id: string): Promise<JobView> {
    return (await this.request<{ node: JobView }>(OPERATIONS.job, { id })).node;
  }
}
