import { spawn, type ChildProcess } from 'node:child_process';
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  closeSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';

/** Thrown when no Docker engine can run here (not root, no dockerd, the daemon does not come up): the test skips. */
export class DockerUnavailable extends Error {}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
  /** Resolve with a non-zero exit code instead of throwing. */
  allowFailure?: boolean;
}

const tail = (text: string, lines = 40) => text.trimEnd().split('\n').slice(-lines).join('\n');

/** Runs a command to completion, capturing its output; throws (with the output's tail) on failure or timeout. */
export function run(command: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    let timedOut = false;
    const timer = options.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, options.timeoutMs)
      : undefined;
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`${command}: ${error.message}`));
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      const result = { code, stdout, stderr };
      if (timedOut)
        return reject(
          new Error(
            `${command} ${args.join(' ')}: no answer within ${options.timeoutMs} ms\n${tail(stderr || stdout)}`,
          ),
        );
      if (code !== 0 && !options.allowFailure)
        return reject(new Error(`${command} ${args.join(' ')} exited ${code}\n${tail(stderr + stdout)}`));
      resolve(result);
    });
  });
}

/** The absolute path of an executable on PATH (plus the sbin folders, where dockerd lives), or undefined. */
export function which(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

const isRoot = () => process.getuid?.() === 0;

/** `apt-get install -y` (waiting for another apt to finish; refreshing the lists once if the first try fails). */
export async function aptInstall(packages: string[], log: (line: string) => void): Promise<void> {
  if (!isRoot() || !which('apt-get'))
    throw new DockerUnavailable(`${packages.join(', ')} missing and cannot be installed here (needs root and apt-get)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () =>
    run('apt-get', ['-o', 'DPkg::Lock::Timeout=600', 'install', '-y', '-q', ...packages], {
      env,
      timeoutMs: 15 * 60_000,
      allowFailure: true,
    });
  log(`apt-get install -y ${packages.join(' ')}`);
  let result = await install();
  if (result.code !== 0) {
    await run('apt-get', ['-o', 'DPkg::Lock::Timeout=600', 'update', '-q'], {
      env,
      timeoutMs: 10 * 60_000,
      allowFailure: true,
    });
    result = await install();
  }
  if (result.code !== 0)
    throw new Error(`apt-get install ${packages.join(' ')} failed:\n${tail(result.stderr + result.stdout)}`);
}

function pidAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

export interface DockerEngine {
  /** Environment for docker CLI calls (DOCKER_HOST points at the engine this run uses). */
  env: NodeJS.ProcessEnv;
  /** How the engine was found: an engine that already answered, or a dockerd this run started. */
  description: string;
  startedByUs: boolean;
  docker(args: string[], options?: Omit<RunOptions, 'env'>): Promise<RunResult>;
  /** Stops the dockerd this run started (by its pid); leaves an engine it found alone. */
  stop(): Promise<void>;
}

function engine(
  env: NodeJS.ProcessEnv,
  description: string,
  startedByUs: boolean,
  stop: () => Promise<void>,
): DockerEngine {
  return {
    env,
    description,
    startedByUs,
    docker: (args, options = {}) => run('docker', args, { timeoutMs: 120_000, ...options, env }),
    stop,
  };
}

async function serverVersion(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const result = await run('docker', ['version', '--format', '{{.Server.Version}}'], {
    env,
    timeoutMs: 20_000,
    allowFailure: true,
  }).catch(() => undefined);
  return result?.code === 0 ? result.stdout.trim() : undefined;
}

/** Persistent image store of the dockerd the tests start, so the base image and dependency layers stay cached. */
export const engineCacheDir =
  process.env.SBS_DOCKER_DATA_ROOT ?? join(homedir(), '.cache', 'sparse-bert-serve', 'docker-engine');

/**
 * Takes the persistent data root if no live run holds it (a lock folder naming the holder's pids); a concurrent
 * run gets a throw-away data root instead, because two daemons cannot share one.
 */
function claimDataRoot(runDir: string): {
  dataRoot: string;
  release: (dockerdPid?: number) => void;
  setDaemon: (pid: number) => void;
} {
  const lock = `${engineCacheDir}.lock`;
  const owner = join(lock, 'owner.json');
  mkdirSync(join(engineCacheDir, '..'), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      mkdirSync(lock);
    } catch {
      let holder: { pid?: number; dockerd?: number } = {};
      try {
        holder = JSON.parse(readFileSync(owner, 'utf8'));
      } catch {
        // being written, or left half-written
      }
      if (pidAlive(holder.pid) || pidAlive(holder.dockerd)) break;
      rmSync(lock, { recursive: true, force: true }); // stale: its run and its dockerd are gone
      continue;
    }
    writeFileSync(owner, JSON.stringify({ pid: process.pid }));
    return {
      dataRoot: engineCacheDir,
      setDaemon: (dockerd) => writeFileSync(owner, JSON.stringify({ pid: process.pid, dockerd })),
      release: () => rmSync(lock, { recursive: true, force: true }),
    };
  }
  const dataRoot = join(runDir, 'data');
  return { dataRoot, setDaemon: () => {}, release: () => rmSync(dataRoot, { recursive: true, force: true }) };
}

/**
 * A Docker engine for the test: the one DOCKER_HOST (or the default socket) names if it answers; otherwise a dockerd
 * started here on a private socket (installing docker.io with apt-get when dockerd is missing). The private daemon
 * uses host networking only (no bridge, no iptables), so it does not disturb the machine or another daemon.
 */
export async function ensureDockerEngine(log: (line: string) => void): Promise<DockerEngine> {
  if (process.platform !== 'linux')
    throw new DockerUnavailable(`Docker engine tests need Linux (this is ${process.platform})`);
  if (!which('docker')) await aptInstall(['docker.io'], log);
  const found = await serverVersion(process.env);
  if (found)
    return engine(
      process.env,
      `existing engine ${found} (${process.env.DOCKER_HOST ?? 'default socket'})`,
      false,
      async () => {},
    );

  if (!isRoot()) throw new DockerUnavailable('no Docker engine answers, and starting dockerd needs root');
  if (!which('dockerd')) await aptInstall(['docker.io'], log);
  const dockerd = which('dockerd');
  if (!dockerd) throw new DockerUnavailable('dockerd is not installed (apt-get install -y docker.io)');

  const runDir = mkdtempSync(join(existsSync('/tmp') ? '/tmp' : homedir(), 'sbsd-'));
  const { dataRoot, release, setDaemon } = claimDataRoot(runDir);
  const socket = join(runDir, 'docker.sock');
  const logPath = join(runDir, 'dockerd.log');
  const logFd = openSync(logPath, 'a');
  const child = spawn(
    dockerd,
    [
      '--host',
      `unix://${socket}`,
      '--data-root',
      dataRoot,
      '--exec-root',
      join(runDir, 'exec'),
      '--pidfile',
      join(runDir, 'dockerd.pid'),
      '--bridge',
      'none',
      '--iptables=false',
    ],
    { stdio: ['ignore', logFd, logFd] },
  );
  closeSync(logFd);
  setDaemon(child.pid!);
  // If this process dies without its after() hook, do not leave the daemon behind.
  const killOnExit = () => child.kill('SIGTERM');
  process.once('exit', killOnExit);
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: `unix://${socket}` };
  delete env.DOCKER_CONTEXT;

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    process.off('exit', killOnExit);
    child.kill('SIGTERM'); // dockerd stops its containers and its containerd, then exits
    if (!(await waitForExit(child, 45_000))) {
      child.kill('SIGKILL');
      await waitForExit(child, 5_000);
    }
    release();
    // dockerd leaves its network namespace handle (exec-root/netns/default, an nsfs bind mount) mounted.
    const mounts = readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .map((line) => line.split(' ')[1]?.replace(/\\040/g, ' '))
      .filter((mountPoint): mountPoint is string => !!mountPoint && mountPoint.startsWith(`${runDir}/`))
      .sort((a, b) => b.length - a.length);
    for (const mountPoint of mounts) await run('umount', ['-l', mountPoint], { allowFailure: true, timeoutMs: 10_000 });
    try {
      rmSync(runDir, { recursive: true, force: true });
    } catch (error) {
      log(`could not remove ${runDir}: ${(error as Error).message}`);
    }
  };

  const deadline = Date.now() + 90_000;
  let exited = false;
  child.once('exit', () => (exited = true));
  while (Date.now() < deadline && !exited) {
    const version = await serverVersion(env);
    if (version)
      return engine(
        env,
        `dockerd ${version} started by this test (pid ${child.pid}, data root ${dataRoot})`,
        true,
        stop,
      );
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  const output = existsSync(logPath) ? tail(readFileSync(logPath, 'utf8'), 15) : '';
  await stop();
  throw new DockerUnavailable(
    `dockerd ${exited ? 'exited' : 'did not answer within 90 s'}; a Docker engine cannot run here:\n${output}`,
  );
}

/** The Dockerfile's default base image (`ARG BASE_IMAGE=...`). */
export function defaultBaseImage(dockerfile: string): string {
  const match = /^ARG BASE_IMAGE=(\S+)/m.exec(readFileSync(dockerfile, 'utf8'));
  if (!match) throw new Error(`${dockerfile} has no ARG BASE_IMAGE=<default>`);
  return match[1];
}

/** Makes sure the base image exists in the engine: if not, docker/build-base-image.sh builds it (cached tarball). */
export async function ensureBaseImage(
  engine: DockerEngine,
  repoRoot: string,
  log: (line: string) => void,
): Promise<{ image: string; built: boolean }> {
  const image = defaultBaseImage(join(repoRoot, 'Dockerfile'));
  if ((await engine.docker(['image', 'inspect', image], { allowFailure: true })).code === 0)
    return { image, built: false };
  if (!which('debootstrap')) await aptInstall(['debootstrap'], log);
  log(`building the local base image ${image} (docker/build-base-image.sh; debootstrap on the first run only)`);
  await run('bash', [join(repoRoot, 'docker', 'build-base-image.sh'), image], {
    env: engine.env,
    cwd: repoRoot,
    timeoutMs: 20 * 60_000,
  });
  return { image, built: true };
}

export async function imageId(engine: DockerEngine, tag: string): Promise<string | undefined> {
  const result = await engine.docker(['image', 'inspect', '--format', '{{.Id}}', tag], { allowFailure: true });
  return result.code === 0 ? result.stdout.trim() : undefined;
}

/**
 * Builds the project image (`--network host`) as `tag`, its build stage as `<tag>-build` (remove both afterwards).
 * The dependency stages are built and tagged as cache images first, so the next run reuses their layers after this
 * run's images are removed; when the lock file changes, the cache image they replace is removed.
 */
export async function buildProjectImage(
  engine: DockerEngine,
  contextDir: string,
  tag: string,
  cacheRepo: string,
  buildArgs: Record<string, string> = {},
): Promise<void> {
  const args = Object.entries(buildArgs).flatMap(([name, value]) => ['--build-arg', `${name}=${value}`]);
  const build = async (target: string | undefined, imageTag: string) => {
    // --force-rm: a failing step leaves no container behind either.
    await engine.docker(
      [
        'build',
        '--force-rm',
        '--network',
        'host',
        ...args,
        ...(target ? ['--target', target] : []),
        '-t',
        imageTag,
        '.',
      ],
      { cwd: contextDir, timeoutMs: 20 * 60_000 },
    );
  };
  for (const stage of ['deps', 'prod-deps']) {
    const cacheTag = `${cacheRepo}:${stage}`;
    const before = await imageId(engine, cacheTag);
    await build(stage, cacheTag);
    if (before && before !== (await imageId(engine, cacheTag)))
      await engine.docker(['rmi', before], { allowFailure: true });
  }
  await build('build', `${tag}-build`);
  await build(undefined, tag);
}
