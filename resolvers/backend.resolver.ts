import { Ctx, Field, ObjectType, Query, Resolver } from 'type-graphql';
import { Context } from '../src/context';
import { BackendInfo, describeBackend } from '../src/engine/runtime';
import { NoCache } from './cache-control';

@ObjectType('Backend', { description: 'What this server runs its models on (CONVSCOPE_BACKEND: one per server).' })
export class BackendType {
  @Field({ description: 'The ONNX Runtime backend: cpu, wasm, cuda or webgpu.' })
  name: string;

  @Field({ description: 'The processor or GPU as the system names it (for webgpu without an NVIDIA driver: the default adapter).' })
  device: string;

  @Field({ description: 'The ONNX Runtime package and its version, e.g. "onnxruntime-node 1.30.0".' })
  version: string;

  constructor(info: BackendInfo) {
    this.name = info.name;
    this.device = info.device;
    this.version = info.version;
  }
}

@Resolver(() => BackendType)
export class BackendResolver {
  // Servers on different backends may share one response cache (Redis): never cached.
  @NoCache()
  @Query(() => BackendType, { description: 'What this server runs its models on.' })
  backend(@Ctx() ctx: Context): BackendType {
    return new BackendType(describeBackend(ctx.services.engine.runtime.backend));
  }
}
