// `npm ci` / `npm install` runs this: builds the native engine with node-gyp against the headers of the Node that
// runs it, offline. It never fails the install: where the addon cannot be built, it says so in one line and the
// server serves on onnxruntime. SBS_ENGINE_BUILD=skip skips the build (to run without the engine on purpose).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const engineDir = dirname(fileURLToPath(import.meta.url));
const logPath = join(engineDir, 'build', 'build.log');
const say = (line) => console.log(`sparse-bert-serve engine: ${line}`);

function findNodeGyp() {
  if (process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp))
    return process.env.npm_config_node_gyp;
  const candidates = [];
  if (process.env.npm_execpath)
    candidates.push(join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  candidates.push(
    resolve(
      process.execPath,
      '..',
      '..',
      'lib',
      'node_modules',
      'npm',
      'node_modules',
      'node-gyp',
      'bin',
      'node-gyp.js',
    ),
  );
  try {
    candidates.push(createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js'));
  } catch {}
  return candidates.find((path) => existsSync(path));
}

/** Node's own headers sit next to the binary (/usr/include/node, /usr/local/include/node): never download them. */
function findNodeDir() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const prefix = resolve(process.execPath, '..', '..');
  return existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined;
}

function main() {
  if (process.env.SBS_ENGINE_BUILD === 'skip')
    return say('build skipped (SBS_ENGINE_BUILD=skip); the server will use onnxruntime');
  if (process.arch !== 'x64')
    return say(
      `not built: the engine's kernels are for x86-64, this is ${process.arch}; the server will use onnxruntime`,
    );
  const compiler = process.env.CXX || 'g++';
  if (spawnSync(compiler, ['--version'], { stdio: 'ignore' }).status !== 0)
    return say(
      `not built: no C++ compiler (${compiler}); install g++ make python3 and run "npm run build:engine"; the server will use onnxruntime`,
    );
  const nodeGyp = findNodeGyp();
  if (!nodeGyp) return say('not built: node-gyp not found (it ships with npm); the server will use onnxruntime');
  const nodeDir = findNodeDir();
  if (!nodeDir)
    return say(
      `not built: no Node headers at ${resolve(process.execPath, '..', '..', 'include', 'node')} (set npm_config_nodedir); the server will use onnxruntime`,
    );
  mkdirSync(join(engineDir, 'build'), { recursive: true });
  const jobs = String(Math.max(1, Math.min(4, process.env.SBS_ENGINE_JOBS | 0 || 2)));
  const result = spawnSync(process.execPath, [nodeGyp, 'rebuild', `--nodedir=${nodeDir}`, `--jobs=${jobs}`], {
    cwd: engineDir,
    encoding: 'utf8',
    env: { ...process.env, npm_config_nodedir: nodeDir },
    maxBuffer: 64 * 1024 * 1024,
  });
  const log = `${result.stdout ?? ''}\n${result.stderr ?? ''}`;
  writeFileSync(logPath, log);
  if (result.status !== 0) {
    const firstError = log.split('\n').find((line) => /error/i.test(line)) ?? `exit code ${result.status}`;
    return say(`build failed (${firstError.trim()}); full log in ${logPath}; the server will use onnxruntime`);
  }
  say(`built ${join(engineDir, 'build', 'Release', 'sbs_engine.node')}`);
}

try {
  main();
} catch (error) {
  say(`not built: ${error.message}; the server will use onnxruntime`);
}
