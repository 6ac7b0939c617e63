/** The machine and software a load test ran on, recorded beside its figures. */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, release, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);

/** The installed version of a package, found from its resolved entry point (works whatever its `exports` say). */
export function packageVersion(name: string): string | null {
  try {
    let dir = dirname(require.resolve(name));
    for (;;) {
      const file = join(dir, 'package.json');
      if (existsSync(file)) {
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
        if (pkg.name === name) return pkg.version ?? null;
      }
      const parent = dirname(dir);
      if (parent === dir) return null;
      dir = parent;
    }
  } catch {
    return null;
  }
}

function gitCommit(): string | null {
  try {
    const cwd = join(dirname(fileURLToPath(import.meta.url)), '..');
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd, encoding: 'utf8', stdio: 'pipe' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain'], { cwd, encoding: 'utf8', stdio: 'pipe' }).trim();
    return dirty ? `${head} (with uncommitted changes)` : head;
  } catch {
    return null;
  }
}

export function describeEnvironment(serverVersion: string | null): Record<string, unknown> {
  const cpuList = cpus();
  return {
    node: process.version,
    onnxruntimeNode: packageVersion('onnxruntime-node'),
    autocannon: packageVersion('autocannon'),
    server: serverVersion,
    gitCommit: gitCommit(),
    cpu: cpuList[0]?.model ?? 'unknown',
    cores: cpuList.length,
    memoryGb: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    platform: `${process.platform} ${release()} ${process.arch}`,
    note: 'the load generator runs on the same machine as the server and shares its cores',
  };
}
