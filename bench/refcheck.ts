/** Dev tool: runs every reference case through the compiler and prints the errors. */
import { loadConfig } from '../src/config';
import { createServices } from '../src/server';
import { project } from '../src/engine/projections';
import { FIXTURE_MODELS } from '../test/helpers';
import { argmaxAbs, loadManifest, loadNpy, relativeError } from '../test/reference';

(async () => {
  const services = await createServices(loadConfig({ MODELS_DIR: FIXTURE_MODELS, CACHE_DIR: '/tmp/cs/cache', LOG_LEVEL: 'warn', CONVSCOPE_BACKEND: process.env.CONVSCOPE_BACKEND ?? 'cpu' }));
  const manifest = loadManifest();
  const filter = process.argv[2];
  for (const c of manifest.cases.filter((c) => !filter || c.id.includes(filter))) {
    const model = services.registry.models.get(c.model)!;
    const input = loadNpy(manifest.models[c.model].input);
    const expected = loadNpy(c.expected).data;
    try {
      const r = await project(services.engine, model, {
        target: c.targetOutput, method: c.method, lrn: c.lrn, image: { key: c.model, data: input.data },
        channel: c.channel, seed: c.seed, position: c.position ?? undefined,
      });
      const err = relativeError(r.projection, expected);
      const ok = err <= 1e-4 && argmaxAbs(r.projection) === argmaxAbs(expected);
      console.log(ok ? 'ok  ' : 'FAIL', c.id, err.toExponential(2), r.seedValue.toFixed(4), c.seedValue.toFixed(4), JSON.stringify(r.position), JSON.stringify(c.seedPosition));
    } catch (e) {
      console.log('ERR ', c.id, (e as Error).message.slice(0, 300));
    }
  }
  await services.engine.close();
})();
