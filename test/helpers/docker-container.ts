/** Containers of the Docker end-to-end test (test/docker.test.ts): state, logs, HEALTHCHECK, the server's `docker run`. */
import type { DockerEngine } from './docker-engine.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Container helpers on `engine()` (called at each use: the engine is found by the test's before() hook) whose
 * containers carry `runLabel`, so the test's after() hook finds and removes them.
 */
export function containerTools(engine: () => DockerEngine, runLabel: string) {
  const docker = (args: string[], options: { allowFailure?: boolean; timeoutMs?: number; cwd?: string } = {}) =>
    engine().docker(args, options);

  async function containerState(
    name: string,
  ): Promise<{ Status: string; ExitCode: number; OOMKilled: boolean; Health?: { Status: string } }> {
    return JSON.parse((await docker(['inspect', '--format', '{{json .State}}', name])).stdout);
  }

  async function logsOf(name: string): Promise<string> {
    const result = await docker(['logs', name], { allowFailure: true });
    return result.stdout + result.stderr;
  }

  /** Waits for the image's HEALTHCHECK (run every second here) to report healthy. */
  async function waitHealthy(name: string, timeoutMs = 90_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const state = await containerState(name);
      if (state.Health?.Status === 'healthy') return;
      if (state.Status !== 'running')
        throw new Error(
          `${name} ${state.Status} (exit code ${state.ExitCode}) before becoming healthy:\n${await logsOf(name)}`,
        );
      if (Date.now() > deadline)
        throw new Error(
          `${name} not healthy within ${timeoutMs} ms (health: ${state.Health?.Status}):\n${await logsOf(name)}`,
        );
      await sleep(250);
    }
  }

  /** `env` adds `-e` pairs after the defaults (a later value wins for the same name). */
  function runServer(
    name: string,
    image: string,
    serverPort: number,
    volumes: string[],
    env: Record<string, string> = {},
  ): Promise<unknown> {
    return docker([
      'run',
      '-d',
      '--name',
      name,
      '--label',
      runLabel,
      '--network',
      'host',
      '-e',
      'HOST=127.0.0.1',
      '-e',
      `PORT=${serverPort}`,
      // Batches wait up to 1 s for more work, so requests are still queued when SIGTERM arrives.
      '-e',
      'MAX_BATCH_DELAY_MS=1000',
      ...Object.entries(env).flatMap(([key, value]) => ['-e', `${key}=${value}`]),
      '--health-interval',
      '1s',
      '--health-timeout',
      '5s',
      // As deploy/kubernetes runs it: read-only root file system, a writable /tmp.
      '--read-only',
      '--tmpfs',
      '/tmp',
      ...volumes.flatMap((volume) => ['-v', volume]),
      image,
    ]);
  }

  return { containerState, logsOf, waitHealthy, runServer };
}
