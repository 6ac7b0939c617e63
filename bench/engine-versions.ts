/**
 * Two builds of the engine addon on the same model, in one process, alternating in blocks of 3 runs: prints each
 * one's median and per-operator milliseconds and the ratios (this build / the other). Used to compare the engine
 * with an earlier build of itself (e.g. `git worktree add /tmp/old <rev> && (cd /tmp/old && ln -s $PWD/node_modules
 * && node engine/build.mjs)`), where a same-run ratio is the only fair figure on a shared machine.
 * Usage: npx tsx bench/engine-versions.ts <model-dir> <other-addon.node> [tokens=384] [blocks=8]
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadEngineAddon, type NativeEngine } from '../src/runtime/engine-addon.js';
import { engineWeights } from '../src/runtime/engine-weights.js';
import { readModelFile } from '../src/runtime/onnx-initializers.js';

const [dir, otherAddon, tokensArg, blocksArg] = process.argv.slice(2);
if (!dir || !otherAddon) {
  console.error('usage: npx tsx bench/engine-versions.ts <model-dir> <other-addon.node> [tokens=384] [blocks=8]');
  process.exit(2);
}
const tokens = Number(tokensArg ?? 384);
const blocks = Number(blocksArg ?? 8);
const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
const { spec, tensors } = engineWeights(manifest, readModelFile(join(dir, 'model.int8.onnx')));
const builds: { name: string; engine: NativeEngine }[] = [
  { name: 'other', path: otherAddon },
  { name: 'this', path: undefined },
].map(({ name, path }) => {
  const status = loadEngineAddon(path);
  if (!status.available) throw new Error(status.reason);
  return { name, engine: new status.addon.Engine(spec, tensors, { threads: 2 }) };
});
const ids = Int32Array.from({ length: tokens }, (_, i) => 5 + ((i * 7919) % Math.max(1, spec.vocab - 5)));
const offsets = Int32Array.from([0, tokens]);
for (const { engine } of builds) for (let i = 0; i < 2; i++) await engine.run(ids, null, offsets);
const before = builds.map(({ engine }) => engine.profile());
const times: number[][] = builds.map(() => []);
for (let block = 0; block < blocks; block++)
  for (const [i, { engine }] of builds.entries())
    for (let r = 0; r < 3; r++) {
      const start = performance.now();
      await engine.run(ids, null, offsets);
      times[i].push(performance.now() - start);
    }
const ops = Object.keys(before[1].seconds).filter((op) => op in before[0].seconds);
const perRun = builds.map(({ engine }, i) => {
  const after = engine.profile();
  return Object.fromEntries(ops.map((op) => [op, ((after.seconds[op] - before[i].seconds[op]) * 1000) / (3 * blocks)]));
});
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
builds.forEach(({ name }, i) =>
  console.log(
    `${name} build: p50 ${median(times[i]).toFixed(1)} ms; ${ops.map((op) => `${op} ${perRun[i][op].toFixed(2)}`).join(', ')}`,
  ),
);
console.log(
  `this / other, same run, 1 x ${tokens} tokens: run ${((100 * median(times[1])) / median(times[0])).toFixed(0)}%; ` +
    ops.map((op) => `${op} ${((100 * perRun[1][op]) / perRun[0][op]).toFixed(0)}%`).join(', '),
);
for (const { engine } of builds) engine.dispose();
