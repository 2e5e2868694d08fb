/** Images: the ImageInput every inference field takes, uploads, and the Image type. */
import { Arg, Ctx, Field, ID, InputType, Int, Mutation, ObjectType, Resolver } from 'type-graphql';
import { Context } from '../src/context';
import { badInput } from '../src/errors';
import { SourceImage } from '../src/inference';
import { datasetImage, describeImage, uploadedImage, uploadImage } from '../src/service/images';
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

/** The image an ImageInput names: inline bytes are checked (format, size) and kept, so they get an ID too. */
export async function resolveImage(ctx: Context, input: ImageInput): Promise<SourceImage> {
  if (!input || (input.id == null) === (input.base64 == null)) throw badInput('give an image as exactly one of `id` or `base64`');
  if (input.base64 != null) return uploadImage(ctx.services, input.base64);
  const { type, parts } = fromGlobalId(input.id!);
  if (type === 'Image' && parts[0] === 'dataset') return datasetImage(ctx.services, String(parts[1]), String(parts[2]));
  if (type !== 'Image' || parts[0] !== 'upload') throw badInput(`"${input.id}" is not an image ID`);
  return uploadedImage(ctx.services, String(parts[1]));
}

export async function imageType(ctx: Context, image: SourceImage): Promise<ImageType> {
  const { dataset, name } = image;
  const id = dataset && name ? toGlobalId('Image', 'dataset', dataset, name) : toGlobalId('Image', 'upload', image.sha256);
  return Object.assign(new ImageType(), { id, dataset, name }, await describeImage(ctx.services, image));
}

@Resolver(() => ImageType)
export class ImageResolver {
  @NoCache()
  @Mutation(() => ImageType, { description: 'Stores an image (base64 of a PNG, JPEG or WebP file) and returns its reusable ID.' })
  async uploadImage(@Arg('base64') base64: string, @Ctx() ctx: Context): Promise<ImageType> {
    return imageType(ctx, await uploadImage(ctx.services, base64));
  }
}
