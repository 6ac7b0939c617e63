/** One bounded autocannon run (programmatic API) against one model route at one load level. */
import autocannon from 'autocannon';
import type { LoadLevel } from './types.js';

export interface DriveOptions {
  baseUrl: string;
  /** e.g. /models/qa-int8/qa */
  path: string;
  /** JSON bodies; every run sends them in this order from the first, shared by all connections. */
  bodies: string[];
  level: LoadLevel;
  durationSeconds: number;
  maxRequests: number;
  timeoutSeconds: number;
  /** Resolves with a reason when the run must stop early (server gone, interrupted). */
  abort?: Promise<string>;
  /** Extra request headers (e.g. `authorization` for a server with API keys). */
  headers?: Record<string, string>;
  /** Called about once a second while the run goes. */
  onTick?: (elapsedSeconds: number, responses: number) => void;
}

export interface DriveOutcome {
  result: autocannon.Result;
  /** Set when the run was stopped before its duration or request budget ran out. */
  stoppedBecause?: string;
}

/** Connection errors (refused, reset, timeouts) after which a run stops: the target is likely gone. */
export const bailoutErrors = 200;

export function drive(options: DriveOptions): Promise<DriveOutcome> {
  const { bodies, level } = options;
  let next = 0;
  let responses = 0;
  let stoppedBecause: string | undefined;
  let finished = false;
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const settings: autocannon.Options = {
      url: options.baseUrl,
      connections: level.connections,
      duration: options.durationSeconds,
      // autocannon needs at least one request per connection.
      maxOverallRequests: Math.max(options.maxRequests, level.connections),
      timeout: options.timeoutSeconds,
      bailout: bailoutErrors,
      method: 'POST',
      headers: { 'content-type': 'application/json', ...options.headers },
      requests: [
        {
          method: 'POST',
          path: options.path,
          setupRequest: (request) => ({ ...request, body: bodies[next++ % bodies.length] }),
        },
      ],
    };
    if (level.kind === 'rate') settings.overallRate = level.value;
    let instance: autocannon.Instance;
    const timer = setInterval(() => options.onTick?.((performance.now() - started) / 1000, responses), 1000);
    // A hard stop in case the budgets are not honoured (a stuck connection outlives `duration` by its timeout).
    const guard = setTimeout(
      () => {
        stoppedBecause = `the run outlived its ${options.durationSeconds} s budget by more than the request timeout`;
        instance.stop();
      },
      (options.durationSeconds + options.timeoutSeconds + 15) * 1000,
    );
    try {
      instance = autocannon(settings, (error, result) => {
        finished = true;
        clearInterval(timer);
        clearTimeout(guard);
        if (error) reject(error instanceof Error ? error : new Error(String(error)));
        else resolve({ result, stoppedBecause });
      });
    } catch (error) {
      clearInterval(timer);
      clearTimeout(guard);
      reject(error);
      return;
    }
    instance.on('response', () => responses++);
    void options.abort?.then((reason) => {
      if (finished || stoppedBecause) return;
      stoppedBecause = reason;
      instance.stop();
    });
  });
}
