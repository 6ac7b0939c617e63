#!/usr/bin/env node
import { HubError } from '../conversion/checkpoint/hub.js';
import { ConversionError } from '../conversion/errors.js';
import { EvalError } from '../eval/errors.js';
import { benchCommand, benchUsage } from './commands/bench-command.js';
import { convertCommand, convertUsage } from './commands/convert-command.js';
import { evalCommand, evalUsage } from './commands/eval-command.js';
import { LoadtestError, loadtestCommand, loadtestUsage } from './commands/loadtest-command.js';
import { UsageError } from './commands/flags.js';
import { generateCommand, generateUsage } from './commands/generate-command.js';
import { serveCommand, serveUsage } from './commands/serve-command.js';
import { FirstRunError } from './first-run.js';
import { ModelLoadError } from './models/registry.js';

const usage = `sbs <command> [options]   (sparse int8 BERT serving)

Commands:
  convert    Hugging Face checkpoint (folder or Hub id) -> dense fp32 + sparse int8 ONNX artifacts
  generate   write a seeded random-weight checkpoint (tests, benchmarks)
  bench      session.run latency of a converted model's artifacts, int8/dense ratio
  eval       accuracy on SQuAD v1.1 / GLUE / CoNLL-2003, sparse int8 and dense fp32 side by side
  loadtest   autocannon load test through the server: sparse int8 vs dense fp32, report + latency/throughput chart
  serve      HTTP server: /qa, /classify, /ner, Open Inference Protocol v2, /metrics (npm start)

Run "sbs <command> --help" for its options.`;

const commands: Record<string, { run: (args: string[]) => unknown; usage: string }> = {
  convert: { run: (args) => convertCommand(args, process.env), usage: convertUsage },
  generate: { run: generateCommand, usage: generateUsage },
  bench: { run: benchCommand, usage: benchUsage },
  serve: { run: (args) => serveCommand(args, process.env), usage: serveUsage },
  eval: { run: (args) => evalCommand(args, process.env), usage: evalUsage },
  loadtest: { run: (args) => loadtestCommand(args, process.env), usage: loadtestUsage },
};

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (!name || name === '--help' || name === '-h') {
    console.log(usage);
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    console.error(`error: unknown command "${name}"\n\n${usage}`);
    return 2;
  }
  if (args.includes('--help') || args.includes('-h')) {
    console.log(command.usage);
    return 0;
  }
  try {
    await command.run(args);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`error: ${error.message}${error.usage ? `\n\n${error.usage}` : ''}`);
      return 2;
    }
    if (
      error instanceof ConversionError ||
      error instanceof HubError ||
      error instanceof ModelLoadError ||
      error instanceof FirstRunError ||
      error instanceof EvalError ||
      error instanceof LoadtestError
    ) {
      console.error(`error: ${error.message}`);
      return 1;
    }
    // parseArgs reports unknown or malformed flags with a code; those are usage mistakes too.
    if ((error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`error: ${(error as Error).message}\n\n${command.usage}`);
      return 2;
    }
    throw error;
  }
}

process.exitCode = await main(process.argv.slice(2));
