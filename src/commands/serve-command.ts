import { removeStaleStaging } from '../../conversion/convert.js';
import { converterVersion } from '../../conversion/version.js';
import { parseServerConfig } from '../config.js';
import { hasModels, prepareFirstRun } from '../first-run.js';
import { buildServer } from '../http/server.js';
import { ServerState } from '../http/server-state.js';
import { ServerMetrics } from '../metrics.js';
import { ModelRegistry } from '../models/registry.js';

export { serveUsage } from '../config.js';

const loopback = (host: string) => host === 'localhost' || host === '::1' || host.startsWith('127.');

/**
 * Loads and warms every model, listens, reports ready. On SIGTERM/SIGINT it drains: it keeps listening (new
 * inference 503 with Connection: close, /readyz 503, /healthz 200), finishes every request already received, then
 * closes and exits 0, or 1 past --shutdown-timeout-ms. A further SIGTERM is logged and ignored (the orchestrator's
 * SIGKILL is the hard stop); a further SIGINT (a second Ctrl-C) exits at once with 130.
 */
export async function serveCommand(args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const config = parseServerConfig(args, env);
  const log = (line: string) => console.error(line);
  // An interrupted convert leaves `.<name>.<pid>.converting`; without this a folder holding only that looks empty.
  removeStaleStaging(config.modelsDir, log);
  if (!hasModels(config.modelsDir)) await prepareFirstRun(config, log);
  const metrics = new ServerMetrics();
  const registry = await ModelRegistry.load(config, metrics, log);
  if (registry.size === 0) throw new Error(`no models loaded from ${config.modelsDir}`);
  const state = new ServerState();
  const app = buildServer({ config, registry, metrics, state, version: converterVersion });
  await app.listen({ host: config.host, port: config.port });
  const { apiKeys, metricsAuth } = config.auth;
  if (apiKeys.length)
    app.log.info(
      `API keys required (${apiKeys.length} accepted); open without a key: /healthz, /readyz, /v2/health/*, /openapi.json, /docs${metricsAuth ? '' : ', /metrics'}`,
    );
  else if (!loopback(config.host))
    app.log.warn(
      `no API key (--api-key / API_KEY / API_KEY_FILE): anyone who can reach ${config.host}:${config.port} can use the server`,
    );
  await registry.warmUp();
  state.warmedUp = true;
  app.log.info({ models: registry.list().map((model) => model.name) }, 'ready');

  await new Promise<void>((resolve) => {
    const drain = async (signal: string) => {
      state.draining = true;
      app.log.info(
        { signal, inFlight: state.inFlight },
        'draining: still listening (new inference gets 503), finishing queued and running work',
      );
      const deadline = setTimeout(() => {
        app.log.error(`drain did not finish within ${config.shutdownTimeoutMs} ms; exiting`);
        process.exit(1);
      }, config.shutdownTimeoutMs);
      deadline.unref();
      // Flush the queues at once (no batching delay), then wait for every request received before the signal,
      // including ones whose body is still arriving; only then stop listening.
      await registry.drain();
      await state.idle();
      await registry.drain();
      await app.close();
      await registry.release();
      clearTimeout(deadline);
      app.log.info('drained; exiting');
      resolve();
    };
    const onSignal = (signal: 'SIGTERM' | 'SIGINT') => {
      if (!state.draining) return void drain(signal);
      if (signal === 'SIGINT') {
        app.log.warn({ inFlight: state.inFlight }, 'second SIGINT: exiting now without finishing the drain');
        process.exit(130);
      }
      app.log.warn(
        { inFlight: state.inFlight },
        `SIGTERM while draining: ignored (the drain ends when in-flight work is done or after ${config.shutdownTimeoutMs} ms)`,
      );
    };
    process.on('SIGTERM', () => onSignal('SIGTERM'));
    process.on('SIGINT', () => onSignal('SIGINT'));
  });
}
