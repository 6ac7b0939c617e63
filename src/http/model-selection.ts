import type { Task } from '../../conversion/checkpoint/model-config.js';
import type { ModelRegistry, ServedModel } from '../models/registry.js';
import { RequestError } from '../tasks/errors.js';

/** The model named in the path or body, else the task's default; 404 for unknown names, 400 for the wrong task. */
export function selectModel(
  registry: ModelRegistry,
  task: Task,
  requested: string | undefined,
  field: string,
): ServedModel {
  if (requested === undefined) {
    const model = registry.defaultFor(task);
    if (!model) throw new RequestError(404, `no ${task} model is loaded`, 'unknown_model');
    return model;
  }
  const model = registry.get(requested);
  if (!model) {
    const names = registry.list().map((m) => m.name);
    throw new RequestError(
      404,
      `${field}: unknown model "${requested}"; loaded: ${names.join(', ') || 'none'}`,
      'unknown_model',
    );
  }
  if (model.manifest.task !== task)
    throw new RequestError(400, `${field}: model "${requested}" serves ${model.manifest.task}, not ${task}`);
  return model;
}
