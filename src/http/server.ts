import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { QueueFullError } from '../batcher/batcher.js';
import type { ServerConfig } from '../config.js';
import type { RejectionReason, ServerMetrics } from '../metrics.js';
import type { ModelRegistry } from '../models/registry.js';
import { RequestError } from '../tasks/errors.js';
import { ApiKeys, wwwAuthenticate } from './auth.js';
import { discardBody } from './body-discard.js';
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
  limits: ServerConfig['limits'],
): { status: number; message: string; reason?: RejectionReason; retryAfter?: number } {
  const timeoutMs = limits.requestTimeoutMs;
  if ('validation' in error && error.validation) return { status: 400, message: error.message, reason: 'invalid' };
  if ((error as FastifyError).code === 'FST_ERR_CTP_BODY_TOO_LARGE')
    return {
      status: 413,
      message: `the request body is over the ${limits.bodyLimitBytes}-byte limit (--body-limit / BODY_LIMIT)`,
      reason: 'invalid',
    };
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

/** Authentication refused; the answer does not say whether the header, the scheme or the key was wrong. */
class UnauthorizedError extends Error {
  readonly statusCode = 401;
  constructor() {
    super('a valid API key is required: Authorization: Bearer <key>');
    this.name = 'UnauthorizedError';
  }
}

export function buildServer(ctx: RouteContext): FastifyInstance {
  const { limits } = ctx.config;
  const apiKeys = new ApiKeys(ctx.config.auth.apiKeys, ctx.config.auth.metricsAuth);
  const app = Fastify({
    logger: { level: ctx.config.logLevel },
    bodyLimit: limits.bodyLimitBytes,
    // Node checks the two receive timeouts every connectionsCheckingInterval (default 30 s): once a second here, so
    // a stalled head or body is closed within a second of its deadline.
    http: {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.bodyTimeoutMs,
      connectionsCheckingInterval: 1000,
    },
    requestTimeout: limits.bodyTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // Types are checked, not coerced: `"top_k": "3"` is a 400 naming the field, not a silent conversion.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false, allowUnionTypes: true } },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });

  app.setErrorHandler((error, request, reply) => {
    if (error instanceof UnauthorizedError) {
      reply.header('WWW-Authenticate', wwwAuthenticate);
      if (request.url.startsWith('/v2/')) return reply.code(401).send({ error: error.message });
      return reply.code(401).send({ statusCode: 401, error: 'unauthorized', message: error.message });
    }
    const { status, message, reason, retryAfter } = classifyError(error as FastifyError, limits);
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

  app.addHook('onSend', async (request, reply) => {
    // An early answer (413 by Content-Length, 401, 503) reads and drops the rest of the body first, up to
    // --max-discard bytes: closing while the client still uploads resets the connection and loses the answer.
    if (!request.raw.complete && !(await discardBody(request.raw, limits.maxDiscardBytes)))
      reply.header('Connection', 'close');
    // Responses finished while draining close their connection, so keep-alive clients do not hold shutdown open.
    if (ctx.state.draining) reply.header('Connection', 'close');
  });

  app.addHook('onRequest', async (request, reply) => {
    // In flight until the response is written or the client has gone: the drain waits for these.
    ctx.state.requestStarted();
    reply.raw.once('close', () => ctx.state.requestEnded());
    if (apiKeys.required(request.routeOptions.url) && !apiKeys.accepts(request.headers.authorization))
      throw new UnauthorizedError();
    // Until warm-up is done and once draining starts, inference routes refuse new work; status routes keep answering.
    if (!ctx.state.ready && request.method === 'POST') throw new NotReadyError(ctx.state.draining);
  });

  // The OpenAPI document is generated from the routes' own schemas; /docs serves Swagger UI from the npm package.
  app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'sparse-bert-serve',
        version: ctx.version,
        description:
          'Sparse int8 BERT inference: extractive QA, text classification, NER and the Open Inference Protocol v2.',
      },
      components: {
        securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'one of the --api-key keys' } },
      },
      ...(apiKeys.enabled ? { security: [{ apiKey: [] }] } : {}),
    },
    // Routes open without a key say so (`security: []` overrides the document-wide requirement).
    transform: ({ schema, url }) => ({
      schema: apiKeys.enabled && !apiKeys.required(url) ? { ...schema, security: [] } : schema,
      url,
    }),
  });
  app.register(swaggerUi, {
    routePrefix: '/docs',
    uiConfig: { validatorUrl: null, deepLinking: false },
    // Everything from this server: no fonts, styles or validator badge from elsewhere, and no
    // upgrade-insecure-requests (it would send the page's own assets to https:// on a plain-HTTP deployment).
    staticCSP:
      "default-src 'self'; base-uri 'self'; font-src 'self' data:; frame-ancestors 'self'; img-src 'self' data:; " +
      "object-src 'none'; script-src 'self'; script-src-attr 'none'; style-src 'self' 'unsafe-inline'",
  });
  // Registered after swagger has loaded, so the document lists itself too.
  app.register(async (scope) => {
    scope.get('/openapi.json', { schema: { summary: 'This OpenAPI document' } }, async () => app.swagger());
  });

  app.register(statusRoutes(ctx));
  app.register(qaRoutes(ctx));
  app.register(classifyRoutes(ctx));
  app.register(nerRoutes(ctx));
  app.register(v2Routes(ctx));
  return app;
}
