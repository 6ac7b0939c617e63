import type { FastifyPluginAsync } from 'fastify';
import type { AggregationStrategy } from '../../tasks/ner.js';
import { prepareEntities } from '../../tasks/ner-task.js';
import { runJobs } from '../../tasks/task-job.js';
import { selectModel } from '../model-selection.js';
import { requestSignal } from '../request-signal.js';
import { bodyInputs, bodyOption, modelParams, nerBody, type TaskBody } from '../schemas.js';
import { refuseUnreadableBodies } from '../body-guards.js';
import type { RouteContext } from '../server.js';

export const nerRoutes =
  (ctx: RouteContext): FastifyPluginAsync =>
  async (app) => {
    refuseUnreadableBodies(app);
    for (const url of ['/ner', '/models/:model/ner']) {
      app.post<{ Body: TaskBody | string[]; Params: { model?: string } }>(
        url,
        { schema: { body: nerBody, params: modelParams } },
        async (request, reply) => {
          const body = request.body;
          const model = selectModel(
            ctx.registry,
            'token-classification',
            request.params.model ?? bodyOption(body, 'model'),
            request.params.model ? 'path model' : 'model',
          );
          request.modelName = model.name;
          const { inputs, isList } = bodyInputs<string>(body, (b) => b.text as string);
          const options = {
            // The pipeline's default (`none`, one entry per token) for our forms; the Hugging Face Inference API form
            // (`inputs`) defaults to `simple` like that API, whose clients expect grouped entities (`entity_group`).
            aggregationStrategy:
              bodyOption<AggregationStrategy>(body, 'aggregation_strategy') ??
              (!Array.isArray(body) && body.inputs !== undefined ? 'simple' : 'none'),
            ignoreLabels: bodyOption<string[]>(body, 'ignore_labels'),
          };
          const signal = requestSignal(reply, ctx.config.limits.requestTimeoutMs);
          const run = { signal, metrics: ctx.metrics };
          const results = await runJobs(model, inputs, (text) => prepareEntities(model, text, options, run), run);
          return isList ? results : results[0];
        },
      );
    }
  };
