import type { ServerMetrics } from '../metrics.js';

/** What a task needs from its caller besides the model: cancellation and, in the server, metrics. */
export interface RunContext {
  signal?: AbortSignal;
  metrics?: ServerMetrics;
}

export function timed<T>(histogram: ((seconds: number) => void) | undefined, work: () => T): T {
  const started = performance.now();
  try {
    return work();
  } finally {
    histogram?.((performance.now() - started) / 1000);
  }
}
