import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

import { freePort } from '../../loadtest/target.js';

export { freePort };

export const cliPath = join(import.meta.dirname, '..', '..', 'src', 'cli.ts');

export interface CliProcess {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

/** Starts `sbs <args>` as a user would (through tsx), capturing stdout and stderr together. */
export function startCli(args: string[], env: NodeJS.ProcessEnv = {}): CliProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', cliPath, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

/** Polls /readyz until it answers 200; fails if the process exits or the time runs out. */
export async function waitUntilReady(base: string, process: CliProcess, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void process.exited.then(() => (exited = true));
  while (Date.now() < deadline) {
    if (exited) throw new Error(`server exited before becoming ready:\n${process.output()}`);
    try {
      if ((await fetch(`${base}/readyz`)).status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`server not ready within ${timeoutMs} ms:\n${process.output()}`);
}

/** `sbs serve` on the models folder at a free loopback port, ready (warmed up) when this resolves. */
export async function startServe(
  modelsDir: string,
  extra: string[] = [],
): Promise<{ base: string; port: number; process: CliProcess }> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const process = startCli(['serve', '--models-dir', modelsDir, '--port', String(port), ...extra]);
  await waitUntilReady(base, process);
  return { base, port, process };
}
