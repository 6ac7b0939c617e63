/**
 * The server under test: either one the load test starts itself (`sbs serve` on a free loopback port, as a child
 * process it owns) or a running one given by URL, which must be on this machine (loopback).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LoadtestError } from './types.js';

export interface Target {
  baseUrl: string;
  /** The server's pid when the load test started it (its /proc figures are then measured). */
  pid: number | null;
  command: string[] | null;
  /** Set once a started server has exited: a one-line reason. */
  exitReason(): string | undefined;
  /** Resolves when a started server exits; never for --url. */
  exited: Promise<void>;
  stop(): Promise<void>;
}

/** Why a URL may not be targeted, or undefined when it is a loopback http(s) URL. */
export function loopbackProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `--url must be a URL such as http://127.0.0.1:8080, got "${url}"`;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return `--url must be http(s), got "${url}"`;
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  const loopback = host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
  if (!loopback)
    return `--url ${url}: only servers on this machine (127.0.0.0/8, localhost, [::1]) may be load-tested; refusing host "${parsed.hostname}"`;
  return undefined;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

const describeFetchError = (error: unknown) => {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message;
};

/** GET a path; a connection failure is a LoadtestError naming the URL. */
export async function httpGet(baseUrl: string, path: string, timeoutMs = 10_000): Promise<Response> {
  try {
    return await fetch(`${baseUrl}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    throw new LoadtestError(`cannot reach ${baseUrl}${path}: ${describeFetchError(error)}`);
  }
}

async function waitReady(baseUrl: string, timeoutMs: number, gone: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    const reason = gone();
    if (reason) throw new LoadtestError(reason);
    try {
      const response = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(5_000) });
      if (response.status === 200) return;
      last = `/readyz answered ${response.status}`;
    } catch (error) {
      last = describeFetchError(error);
    }
    await sleep(200);
  }
  throw new LoadtestError(`${baseUrl} was not ready within ${timeoutMs / 1000} s (${last})`);
}

/** A running server: must be loopback, must answer /readyz (waits up to `readyTimeoutMs` while it warms up). */
export async function connectTarget(url: string, readyTimeoutMs = 60_000): Promise<Target> {
  const problem = loopbackProblem(url);
  if (problem) throw new LoadtestError(problem);
  const baseUrl = url.replace(/\/+$/, '');
  // Fail fast when nothing listens: the first probe's connection error is the message.
  const first = await httpGet(baseUrl, '/readyz', 5_000);
  if (first.status !== 200) await waitReady(baseUrl, readyTimeoutMs, () => undefined);
  return {
    baseUrl,
    pid: null,
    command: null,
    exitReason: () => undefined,
    exited: new Promise(() => {}),
    stop: async () => {},
  };
}

export interface StartOptions {
  modelsDir: string;
  folders: string[];
  precisions: string[];
  serveArgs: string[];
  logFile: string;
  readyTimeoutMs?: number;
  log: (line: string) => void;
}

/** How to run this code base's CLI: through tsx from source, or the compiled JavaScript under dist/. */
function cliInvocation(): { args: string[]; cwd: string } {
  const here = dirname(fileURLToPath(import.meta.url));
  const fromSource = import.meta.url.endsWith('.ts');
  const cli = join(here, '..', 'src', fromSource ? 'cli.ts' : 'cli.js');
  return { args: fromSource ? ['--import', 'tsx', cli] : [cli], cwd: join(here, '..') };
}

/** Starts `sbs serve` with the given model folders on a free loopback port and waits until it is ready. */
export async function startServer(options: StartOptions): Promise<Target> {
  const port = await freePort();
  const invocation = cliInvocation();
  const args = [
    ...invocation.args,
    'serve',
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--models-dir',
    resolve(options.modelsDir),
    '--models',
    options.folders.join(','),
    '--precisions',
    options.precisions.join(','),
    '--log-level',
    'warn',
    ...options.serveArgs,
  ];
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: invocation.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env },
  });
  const logStream = createWriteStream(options.logFile);
  let tail: string[] = [];
  const keep = (chunk: Buffer) => {
    logStream.write(chunk);
    tail = [
      ...tail,
      ...chunk
        .toString('utf8')
        .split('\n')
        .filter((line) => line.trim()),
    ].slice(-20);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let reason: string | undefined;
  let stopping = false;
  const exited = new Promise<void>((resolveExit) => {
    child.once('close', (code, signal) => {
      if (!stopping) {
        const lastError = [...tail].reverse().find((line) => /error/i.test(line));
        reason = `the server (pid ${child.pid}) exited ${signal ? `on ${signal}` : `with code ${code}`}${lastError ? `: ${lastError.trim().slice(0, 300)}` : ''}`;
      }
      logStream.end();
      resolveExit();
    });
    child.once('error', (error) => {
      reason = `the server could not be started: ${error.message}`;
      resolveExit();
    });
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  const target: Target = {
    baseUrl,
    pid: child.pid ?? null,
    command: [process.execPath, ...args],
    exitReason: () => reason,
    exited,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      stopping = true;
      child.kill('SIGTERM');
      // The server drains within its shutdown timeout (30 s by default); past that, kill it.
      const force = setTimeout(() => child.kill('SIGKILL'), 40_000);
      await exited;
      clearTimeout(force);
    },
  };
  options.log(
    `starting the server (pid ${child.pid}) on ${baseUrl}: models ${options.folders.join(', ')}, log ${options.logFile}`,
  );
  try {
    await waitReady(baseUrl, options.readyTimeoutMs ?? 300_000, () => reason);
  } catch (error) {
    await target.stop();
    throw error;
  }
  return target;
}
