/** Images: the ImageInput every inference field takes, uploads, and the Image type. */
import { Arg, Ctx, Field, ID, InputType, Int, Mutation, ObjectType, Resolver } from 'type-graphql';
import { Context } from '../src/context';
import { createHash } from 'node:crypto';
import { badInput, listSome, notFound } from '../src/errors';
import { inspectImage } from '../src/images/preprocess';
import { SourceImage } from '../src/inference';
import { CacheFor, NoCache } from './cache-control';
import { fromGlobalId, NodeInterface, toGlobalId } from './node';

@InputType({ description: 'An image: the `id` of an uploaded (or dataset) image, or inline base64 bytes (PNG, JPEG, WebP). Exactly one.' })
export class ImageInput {
  @Field(() => ID, { nullable: true }) id?: string;
  @Field(() => String, { nullable: true, description: 'Base64 of the file bytes; a data: URL prefix is allowed.' }) base64?: string;
}

@CacheFor()
@ObjectType('Image', { implements: NodeInterface, description: 'An uploaded image or an image of a dataset.' })
export class ImageType implements NodeInterface {
  static graphqlName = 'Image';
  @Field(() => ID) id!: string;
  @Field({ description: 'sha256 of the file bytes.' }) sha256!: string;
  @Field() format!: string;
  @Field(() => Int, { description: 'As shown: EXIF orientation applied. Boxes in this image are in these pixels.' }) width!: number;
  @Field(() => Int) height!: number;
  @Field(() => String, { nullable: true, description: 'File name, for dataset images.' }) name?: string;
  @Field(() => String, { nullable: true, description: "The dataset's label (labels.json)." }) label?: string;
  @Field(() => String, { nullable: true, description: 'The dataset it belongs to.' }) dataset?: string;
  @Field(() => String, { nullable: true, description: 'The original file, for dataset images.' }) url?: string;
}

const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

export function decodeBase64(text: string, limit: number): Buffer {
  const body = text.replace(/^data:[^;,]*;base64,/, '').replace(/\s+/g, '');
  if (body.length === 0 || !BASE64.test(body)) throw badInput('`base64` is not valid base64');
  if ((body.length * 3) / 4 > limit + 3) throw badInput(`image over the limit of ${limit} bytes (MAX_IMAGE_MB)`);
  return Buffer.from(body, body.includes('-') || body.includes('_') ? 'base64url' : 'base64');
}

/** The bytes behind an ImageInput, checked (format, size) and kept, so an inline image gets an ID too. */
export async function resolveImage(ctx: Context, input: ImageInput): Promise<SourceImage> {
  const { images, config } = ctx.services;
  if (!input || (input.id == null) === (input.base64 == null)) throw badInput('give an image as exactly one of `id` or `base64`');
  if (input.base64 != null) {
    const stored = await images.put(decodeBase64(input.base64, config.maxImageBytes));
    return { sha256: stored.sha256, bytes: stored.bytes };
  }
  const { type, parts } = fromGlobalId(input.id!);
  if (type === 'Image' && parts[0] === 'dataset') return datasetImage(ctx, String(parts[1]), String(parts[2]));
  if (type !== 'Image' || parts[0] !== 'upload') throw badInput(`"${input.id}" is not an image ID`);
  const sha256 = String(parts[1]);
  const bytes = images.get(sha256);
  if (!bytes) throw notFound(`no uploaded image ${sha256.slice(0, 12)}…: upload it again with uploadImage`);
  return { sha256, bytes };
}

export const imageId = (sha256: string) => toGlobalId('Image', 'upload', sha256);
export const datasetImageId = (dataset: string, name: string) => toGlobalId('Image', 'dataset', dataset, name);

/** An image of a dataset by name; only names the dataset lists are read. */
export function datasetImage(ctx: Context, datasetName: string, name: string): SourceImage {
  const { datasets } = ctx.services;
  const dataset = datasets.datasets.get(datasetName);
  if (!dataset) throw notFound(`no dataset "${datasetName}"; datasets: ${listSome(datasets.names())}`, { dataset: datasetName });
  if (!dataset.byName.has(name)) throw notFound(`dataset "${datasetName}" has no image "${name}"`);
  const bytes = datasets.read(dataset, name);
  return { sha256: createHash('sha256').update(bytes).digest('hex'), bytes, dataset: datasetName, name };
}

export async function describeImage(ctx: Context, image: SourceImage): Promise<ImageType> {
  const info = await inspectImage(image.bytes, ctx.services.config);
  const described = Object.assign(new ImageType(), { id: imageId(image.sha256), sha256: image.sha256, ...info });
  if (image.dataset && image.name) {
    const entry = ctx.services.datasets.datasets.get(image.dataset)?.byName.get(image.name);
    Object.assign(described, {
      id: datasetImageId(image.dataset, image.name),
      name: image.name,
      dataset: image.dataset,
      label: entry?.label,
      url: `/datasets/${encodeURIComponent(image.dataset)}/${encodeURIComponent(image.name)}`,
    });
  }
  return described;
}

@Resolver(() => ImageType)
export class ImageResolver {
  @NoCache()
  @Mutation(() => ImageType, { description: 'Stores an image (base64 of a PNG, JPEG or WebP file) and returns its reusable ID.' })
  async uploadImage(@Arg('base64') base64: string, @Ctx() ctx: Context): Promise<ImageType> {
    const stored = await ctx.services.images.put(decodeBase64(base64, ctx.services.config.maxImageBytes));
    return describeImage(ctx, stored);
  }
}
