import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BatcherObserver } from './batcher/batcher.js';

export const metricPrefix = 'sbs_';

const latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export type RejectionReason =
  'queue_full' | 'deadline' | 'too_long' | 'invalid' | 'client_gone' | 'draining' | 'not_ready' | 'unknown_model';

/** Every metric the server exports, on its own registry (tests build many servers in one process). */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: `${metricPrefix}http_requests_total`,
    help: 'HTTP requests by route, model and status code',
    labelNames: ['route', 'model', 'status'],
    registers: [this.registry],
  });
  readonly requestDuration = new Histogram({
    name: `${metricPrefix}http_request_duration_seconds`,
    help: 'HTTP request duration by route, model and status code',
    labelNames: ['route', 'model', 'status'],
    buckets: latencyBuckets,
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: `${metricPrefix}queue_depth`,
    help: 'Rows waiting in the model queue',
    labelNames: ['model'],
    registers: [this.registry],
  });
  readonly queueWait = new Histogram({
    name: `${metricPrefix}queue_wait_seconds`,
    help: 'Time a row waited in the queue before its batch ran',
    labelNames: ['model'],
    buckets: latencyBuckets,
    registers: [this.registry],
  });
  readonly tokenization = new Histogram({
    name: `${metricPrefix}tokenization_duration_seconds`,
    help: 'Tokenization and window building per request',
    labelNames: ['task'],
    buckets: latencyBuckets,
    registers: [this.registry],
  });
  readonly inference = new Histogram({
    name: `${metricPrefix}inference_duration_seconds`,
    help: 'session.run time per batch',
    labelNames: ['model'],
    buckets: latencyBuckets,
    registers: [this.registry],
  });
  readonly postprocessing = new Histogram({
    name: `${metricPrefix}postprocess_duration_seconds`,
    help: 'Span search, label scores or entity aggregation per request',
    labelNames: ['task'],
    buckets: latencyBuckets,
    registers: [this.registry],
  });
  readonly batchSize = new Histogram({
    name: `${metricPrefix}batch_size`,
    help: 'Rows per formed batch',
    labelNames: ['model'],
    buckets: [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64],
    registers: [this.registry],
  });
  readonly batchTokens = new Histogram({
    name: `${metricPrefix}batch_padded_tokens`,
    help: 'Padded tokens per formed batch (longest row x rows)',
    labelNames: ['model'],
    buckets: [16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384],
    registers: [this.registry],
  });
  readonly rejections = new Counter({
    name: `${metricPrefix}rejections_total`,
    help: 'Requests refused, by reason (invalid, too_long, unknown_model, queue_full, deadline, client_gone, not_ready, draining)',
    labelNames: ['model', 'reason'],
    registers: [this.registry],
  });
  readonly droppedRows = new Counter({
    name: `${metricPrefix}dropped_rows_total`,
    help: 'Queued rows removed before inference because their deadline passed or their client left',
    labelNames: ['model', 'reason'],
    registers: [this.registry],
  });
  readonly modelInfo = new Gauge({
    name: `${metricPrefix}model_info`,
    help: 'Served models (value 1)',
    labelNames: ['model', 'task', 'precision', 'sparsity', 'backend', 'kernel_path'],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: metricPrefix });
  }

  batcherObserver(model: string): BatcherObserver {
    return {
      batchRan: (rows, paddedTokens, seconds) => {
        this.batchSize.observe({ model }, rows);
        this.batchTokens.observe({ model }, paddedTokens);
        this.inference.observe({ model }, seconds);
      },
      rowWaited: (seconds) => this.queueWait.observe({ model }, seconds),
      rowsDropped: (reason, rows) => this.droppedRows.inc({ model, reason }, rows),
      depthChanged: (rows) => this.queueDepth.set({ model }, rows),
    };
  }
}
