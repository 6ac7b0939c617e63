import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { QueueFullError } from '../batcher/batcher.js';
import type { ServerConfig } from '../config.js';
import type { RejectionReason, ServerMetrics } from '../metrics.js';
import type { ModelRegistry } from '../models/registry.js';
import { RequestError } from '../tasks/errors.js';
import { ClientGoneError, clientLeft } from './request-signal.js';
import { classifyRoutes } from './routes/classify.js';
import { nerRoutes } from './routes/ner.js';
import { qaRoutes } from './routes/qa.js';
import { statusRoutes } from './routes/status.js';
import { v2Routes } from './routes/v2.js';
import { NotReadyError, type ServerState } from './server-state.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by task routes once the model is known; a label of the request metrics. */
    modelName?: string;
  }
}

export interface RouteContext {
  config: ServerConfig;
  registry: ModelRegistry;
  metrics: ServerMetrics;
  state: ServerState;
  version: string;
}

/** Maps every failure to a status code; client mistakes are 4xx with a message naming the field, never 500. */
function classifyError(
  error: FastifyError | Error,
  timeoutMs: number,
): { status: number; message: string; reason?: RejectionReason; retryAfter?: number } {
  if ('validation' in error && error.validation) return { status: 400, message: error.message, reason: 'invalid' };
  if (error instanceof RequestError) return { status: error.status, message: error.message, reason: error.reason };
  if (error instanceof QueueFullError)
    return {
      status: 429,
      message: `${error.message}; retry after ${error.retryAfterSeconds} s`,
      reason: 'queue_full',
      retryAfter: error.retryAfterSeconds,
    };
  if (error instanceof NotReadyError)
    return { status: 503, message: error.message, reason: error.draining ? 'draining' : 'not_ready' };
  if (error.name === 'TimeoutError')
    return {
      status: 504,
      message: `the request did not finish within its ${timeoutMs} ms deadline`,
      reason: 'deadline',
    };
  if (error instanceof ClientGoneError) return { status: 499, message: error.message, reason: 'client_gone' };
  const status = (error as FastifyError).statusCode;
  if (status && status >= 400 && status < 500) return { status, message: error.message, reason: 'invalid' };
  return { status: 500, message: 'internal error' };
}

export function buildServer(ctx: RouteContext): FastifyInstance {
  const app = Fastify({
    logger: { level: ctx.config.logLevel },
    bodyLimit: ctx.config.limits.bodyLimitBytes,
    // Types are checked, not coerced: `"top_k": "3"` is a 400 naming the field, not a silent conversion.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false, allowUnionTypes: true } },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });

  app.setErrorHandler((error, request, reply) => {
    const { status, message, reason, retryAfter } = classifyError(
      error as FastifyError,
      ctx.config.limits.requestTimeoutMs,
    );
    if (reason) ctx.metrics.rejections.inc({ model: request.modelName ?? '', reason });
    if (status >= 500 && status !== 503 && status !== 504) request.log.error({ err: error }, 'request failed');
    if (retryAfter) reply.header('Retry-After', String(retryAfter));
    if (request.url.startsWith('/v2/')) return reply.code(status).send({ error: message });
    return reply.code(status).send({ statusCode: status, error: reason ?? 'error', message });
  });

  app.addHook('onResponse', async (request, reply) => {
    // A client that left before its answer was written is counted as 499 (nginx's code), not as a success.
    const clientGone = clientLeft(reply) && reply.statusCode !== 499;
    if (clientGone) ctx.metrics.rejections.inc({ model: request.modelName ?? '', reason: 'client_gone' });
    const status = clientGone ? '499' : String(reply.statusCode);
    const labels = { route: request.routeOptions.url ?? 'unmatched', model: request.modelName ?? '', status };
    ctx.metrics.requests.inc(labels);
    ctx.metrics.requestDuration.observe(labels, reply.elapsedTime / 1000);
  });

  // Responses finished while draining close their connection, so keep-alive clients do not hold shutdown open.
  app.addHook('onSend', async (_request, reply) => {
    if (ctx.state.draining) reply.header('Connection', 'close');
  });

  // Until warm-up is done and once draining starts, inference routes refuse new work; status routes keep answering.
  app.addHook('onRequest', async (request) => {
    if (!ctx.state.ready && request.method === 'POST') throw new NotReadyError(ctx.state.draining);
  });

  app.register(statusRoutes(ctx));
  app.register(qaRoutes(ctx));
  app.register(classifyRoutes(ctx));
  app.register(nerRoutes(ctx));
  app.register(v2Routes(ctx));
  return app;
}
