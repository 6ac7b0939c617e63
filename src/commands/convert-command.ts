import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { convert, type ConvertOptions } from '../../conversion/convert.js';
import { defaultTolerances } from '../../conversion/verify/verify.js';
import { UsageError, numberFlag } from './flags.js';

export const convertUsage = `sbs convert <checkpoint-dir | hub-model-id> [options]

Makes models/<name>/{model.onnx (dense fp32), model.int8.onnx (sparse int8), tokenizer, config, manifest.json}.
  --name <name>                 artifact folder name (default: last part of the source)
  --models-dir <dir>            where artifact folders go (default: $MODELS_DIR or ./models)
  --output <dir>                exact output folder (overrides --name/--models-dir)
  --force                       replace an existing output folder
  --prune <recipe.json>         one-shot prune with an Intel-format recipe (costs accuracy without retraining)
  --sparsity <0..1>             override the recipe's target_sparsity
  --quantization-recipe <json>  not_to_quantize / not_to_requantize_output (default: heads stay fp32)
  --fp32-word-embeddings        keep the word embedding table fp32 in the int8 model
  --max-seq-len <n>             max sequence length recorded for serving
  --revision <rev>              Hub revision (default: main)
  --hub-endpoint <url>          default: $HF_ENDPOINT or https://huggingface.co
  --token <token>               default: $HF_TOKEN
  --cache-dir <dir>             Hub downloads (default: $SBS_CACHE_DIR or ~/.cache/sparse-bert-serve/hub)
  --int8-min-cosine <x>         verification threshold for int8 vs dense logits (default ${defaultTolerances.int8MinCosine})
  --seed <n>                    seed of the verification inputs (default 7)`;

export function parseConvertArgs(args: string[], env: NodeJS.ProcessEnv, log: (line: string) => void): ConvertOptions {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      'models-dir': { type: 'string' },
      output: { type: 'string' },
      force: { type: 'boolean', default: false },
      prune: { type: 'string' },
      sparsity: { type: 'string' },
      'quantization-recipe': { type: 'string' },
      'fp32-word-embeddings': { type: 'boolean', default: false },
      'max-seq-len': { type: 'string' },
      revision: { type: 'string', default: 'main' },
      'hub-endpoint': { type: 'string' },
      token: { type: 'string' },
      'cache-dir': { type: 'string' },
      'int8-min-cosine': { type: 'string' },
      seed: { type: 'string' },
    },
  });
  if (positionals.length !== 1)
    throw new UsageError('convert takes exactly one checkpoint directory or Hub model id', convertUsage);
  const source = positionals[0];
  const name = values.name ?? basename(source.replace(/\/+$/, ''));
  const modelsDir = values['models-dir'] ?? env.MODELS_DIR ?? 'models';
  const sparsity = numberFlag(values.sparsity, '--sparsity', { min: 0, maxExclusive: 1 });
  if (sparsity !== undefined && !values.prune)
    throw new UsageError('--sparsity needs --prune <recipe.json>', convertUsage);
  return {
    source,
    outputDir: values.output ?? join(modelsDir, name),
    overwrite: values.force,
    hub: {
      endpoint: values['hub-endpoint'] ?? env.HF_ENDPOINT ?? 'https://huggingface.co',
      token: values.token ?? env.HF_TOKEN,
      revision: values.revision,
      cacheDir: values['cache-dir'] ?? env.SBS_CACHE_DIR ?? join(homedir(), '.cache', 'sparse-bert-serve', 'hub'),
    },
    pruneRecipePath: values.prune,
    pruneSparsity: sparsity,
    quantizationRecipePath: values['quantization-recipe'],
    quantizeWordEmbeddings: !values['fp32-word-embeddings'],
    maxSequenceLength: numberFlag(values['max-seq-len'], '--max-seq-len', { min: 1, integer: true }),
    tolerances: {
      ...defaultTolerances,
      int8MinCosine:
        numberFlag(values['int8-min-cosine'], '--int8-min-cosine', { min: -1 }) ?? defaultTolerances.int8MinCosine,
    },
    seed: numberFlag(values.seed, '--seed', { integer: true }) ?? 7,
    engineAddonPath: env.SBS_ENGINE_ADDON,
    log,
  };
}

export async function convertCommand(args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const options = parseConvertArgs(args, env, (line) => console.error(line));
  const manifest = await convert(options);
  const c = manifest.compression;
  console.log(
    `wrote ${options.outputDir}: ${manifest.architecture}, encoder sparsity ${(manifest.sparsity.final.encoderLinearSparsity * 100).toFixed(1)}%, ` +
      `encoder compression ${c.encoderCompressionRatio.toFixed(1)}x (paper count; ${c.encoderStoredCompressionRatio.toFixed(1)}x as stored), ` +
      `model.onnx ${(manifest.files['model.onnx'].bytes / 1e6).toFixed(1)} MB, model.int8.onnx ${(manifest.files['model.int8.onnx'].bytes / 1e6).toFixed(1)} MB`,
  );
}
