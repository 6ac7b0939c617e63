import { spawn } from 'node:child_process';
import { mkdirSync, openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './cli-process.js';
import { aptInstall, which } from './docker-engine.js';

export interface PrometheusServer {
  base: string;
  pid: number;
  /** Runs an instant query through the HTTP API (/api/v1/query) and returns its vector. */
  query(promql: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>>;
  /** Polls a query until it returns at least one series (and `accept` agrees), or fails with what it last saw. */
  waitFor(
    promql: string,
    timeoutMs?: number,
    accept?: (values: number[]) => boolean,
  ): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>>;
  stop(): Promise<void>;
}

/**
 * Starts a real Prometheus (Debian's `prometheus`; installed with apt-get when missing) on a free loopback port, with
 * a temporary storage folder, scraping `targets` every second.
 */
export async function startPrometheus(
  root: string,
  targets: string[],
  log: (line: string) => void,
): Promise<PrometheusServer> {
  if (!which('prometheus')) await aptInstall(['prometheus'], log);
  const dir = join(root, 'prometheus');
  mkdirSync(join(dir, 'data'), { recursive: true });
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      '  evaluation_interval: 1s',
      'scrape_configs:',
      '  - job_name: sparse-bert-serve',
      '    static_configs:',
      `      - targets: [${targets.map((t) => `'${t}'`).join(', ')}]`,
      '',
    ].join('\n'),
  );
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const logPath = join(dir, 'prometheus.log');
  const logFd = openSync(logPath, 'a');
  const child = spawn(
    which('prometheus')!,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', logFd, logFd] },
  );
  closeSync(logFd);
  const killOnExit = () => child.kill('SIGTERM');
  process.once('exit', killOnExit);
  let exited = child.exitCode !== null;
  child.once('exit', () => (exited = true));

  const stop = async () => {
    process.off('exit', killOnExit);
    if (exited) return;
    let timer: NodeJS.Timeout | undefined;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await Promise.race([gone, new Promise((resolve) => (timer = setTimeout(resolve, 15_000)))]);
    clearTimeout(timer);
    if (!exited) {
      child.kill('SIGKILL');
      await gone;
    }
  };

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error(`prometheus exited at start:\n${readFileSync(logPath, 'utf8')}`);
    try {
      if ((await fetch(`${base}/-/ready`)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus not ready within 30 s:\n${readFileSync(logPath, 'utf8')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }

  const query: PrometheusServer['query'] = async (promql) => {
    const response = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await response.json()) as {
      status: string;
      error?: string;
      data: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> };
    };
    if (body.status !== 'success') throw new Error(`prometheus query ${promql}: ${body.error}`);
    return body.data.result;
  };
  const waitFor: PrometheusServer['waitFor'] = async (promql, timeoutMs = 30_000, accept = () => true) => {
    const until = Date.now() + timeoutMs;
    let last: Awaited<ReturnType<typeof query>> = [];
    while (Date.now() < until) {
      last = await query(promql);
      if (last.length && accept(last.map((series) => Number(series.value[1])))) return last;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    const targetsState = await fetch(`${base}/api/v1/targets`).then(
      (r) => r.text(),
      (e) => String(e),
    );
    throw new Error(
      `prometheus: ${promql} still ${JSON.stringify(last)} after ${timeoutMs} ms; targets: ${targetsState}`,
    );
  };
  return { base, pid: child.pid!, query, waitFor, stop };
}
