import type { FastifyPluginAsync } from 'fastify';
import type { RouteContext } from '../server.js';

export const statusRoutes =
  (ctx: RouteContext): FastifyPluginAsync =>
  async (app) => {
    app.get('/healthz', async () => ({ status: 'live' }));

    app.get('/readyz', async (_request, reply) => {
      if (ctx.state.ready) return { status: 'ready' };
      reply.code(503);
      return { status: ctx.state.draining ? 'draining' : 'warming up' };
    });

    app.get('/models', async () =>
      ctx.registry.list().map((model) => {
        const { manifest } = model;
        return {
          name: model.name,
          task: manifest.task,
          precision: model.precision,
          backend: model.backend,
          kernel_path: model.kernelPath,
          architecture: manifest.architecture,
          default: ctx.registry.defaultFor(manifest.task) === model,
          encoder_sparsity: manifest.sparsity.final.encoderLinearSparsity,
          compression_ratio: manifest.compression.encoderCompressionRatio,
          max_sequence_length: manifest.maxSequenceLength,
          labels: manifest.labels,
        };
      }),
    );

    app.get('/metrics', async (_request, reply) => {
      reply.header('Content-Type', ctx.metrics.registry.contentType);
      return ctx.metrics.registry.metrics();
    });
  };
