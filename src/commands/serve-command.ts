import { converterVersion } from '../../conversion/version.js';
import { parseServerConfig } from '../config.js';
import { hasModels, prepareFirstRun } from '../first-run.js';
import { buildServer } from '../http/server.js';
import { ServerState } from '../http/server-state.js';
import { ServerMetrics } from '../metrics.js';
import { ModelRegistry } from '../models/registry.js';

export { serveUsage } from '../config.js';

/** Loads and warms every model, listens, reports ready; on SIGTERM/SIGINT drains and exits 0 within the deadline. */
export async function serveCommand(args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const config = parseServerConfig(args, env);
  const log = (line: string) => console.error(line);
  if (!hasModels(config.modelsDir)) await prepareFirstRun(config, log);
  const metrics = new ServerMetrics();
  const registry = await ModelRegistry.load(config, metrics, log);
  if (registry.size === 0) throw new Error(`no models loaded from ${config.modelsDir}`);
  const state = new ServerState();
  const app = buildServer({ config, registry, metrics, state, version: converterVersion });
  await app.listen({ host: config.host, port: config.port });
  await registry.warmUp();
  state.warmedUp = true;
  app.log.info({ models: registry.list().map((model) => model.name) }, 'ready');

  await new Promise<void>((resolve) => {
    const shutdown = async (signal: string) => {
      if (state.draining) return;
      state.draining = true;
      app.log.info({ signal }, 'draining: finishing queued and running work');
      const deadline = setTimeout(() => {
        app.log.error(`drain did not finish within ${config.shutdownTimeoutMs} ms; exiting`);
        process.exit(1);
      }, config.shutdownTimeoutMs);
      deadline.unref();
      // Flush the queues at once (no batching delay) while the server waits for in-flight requests.
      await Promise.all([app.close(), registry.drain()]);
      await registry.drain();
      await registry.release();
      clearTimeout(deadline);
      app.log.info('drained; exiting');
      resolve();
    };
    process.once('SIGTERM', () => void shutdown('SIGTERM'));
    process.once('SIGINT', () => void shutdown('SIGINT'));
  });
}
