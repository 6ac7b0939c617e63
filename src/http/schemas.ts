/** JSON schemas of the task routes. Both our flat form and the Hugging Face Inference API form are accepted. */
const maxInputs = 64;
const nonEmpty = { type: 'string', minLength: 1 } as const;
const text = { type: 'string', minLength: 1, maxLength: 100_000 } as const;

export const modelParams = {
  type: 'object',
  properties: { model: { type: 'string', minLength: 1 } },
} as const;

const qaPair = {
  type: 'object',
  required: ['question', 'context'],
  properties: { question: text, context: { type: 'string', minLength: 1, maxLength: 1_000_000 } },
  additionalProperties: false,
} as const;

const qaOptions = {
  top_k: { type: 'integer', minimum: 1, maximum: 20 },
  max_answer_len: { type: 'integer', minimum: 1, maximum: 512 },
  doc_stride: { type: 'integer', minimum: 0, maximum: 512 },
  max_seq_len: { type: 'integer', minimum: 32, maximum: 4096 },
  max_question_len: { type: 'integer', minimum: 1, maximum: 512 },
  handle_impossible_answer: { type: 'boolean' },
} as const;

/** `if inputs then … else question+context required` gives "body must have required property 'question'". */
function taskBody(
  single: object,
  options: object,
  itemSchema: object,
  inputsSchema: object,
  requiredWithoutInputs: string[],
) {
  return {
    type: ['object', 'array'],
    minItems: 1,
    maxItems: maxInputs,
    items: itemSchema,
    properties: {
      ...single,
      ...options,
      inputs: inputsSchema,
      parameters: { type: 'object', properties: options, additionalProperties: false },
      model: nonEmpty,
    },
    additionalProperties: false,
    if: { type: 'object', required: ['inputs'] },
    else: { required: requiredWithoutInputs },
  };
}

export const qaBody = taskBody(
  { question: text, context: qaPair.properties.context },
  qaOptions,
  qaPair,
  { anyOf: [qaPair, { type: 'array', items: qaPair, minItems: 1, maxItems: maxInputs }] },
  ['question', 'context'],
);

const textPair = {
  type: 'object',
  required: ['text'],
  properties: { text, text_pair: text },
  additionalProperties: false,
} as const;

const classifyOptions = {
  top_k: { type: 'integer', minimum: 1, maximum: 1000 },
} as const;

export const classifyBody = taskBody(
  { text, text_pair: text },
  classifyOptions,
  { anyOf: [text, textPair] },
  { anyOf: [text, textPair, { type: 'array', items: { anyOf: [text, textPair] }, minItems: 1, maxItems: maxInputs }] },
  ['text'],
);

const nerOptions = {
  aggregation_strategy: { type: 'string', enum: ['none', 'simple', 'first', 'average', 'max'] },
  ignore_labels: { type: 'array', items: { type: 'string' }, maxItems: 100 },
} as const;

export const nerBody = taskBody(
  { text },
  nerOptions,
  text,
  { anyOf: [text, { type: 'array', items: text, minItems: 1, maxItems: maxInputs }] },
  ['text'],
);

export interface TaskBody {
  model?: string;
  inputs?: unknown;
  parameters?: Record<string, unknown>;
  [option: string]: unknown;
}

/** The inputs of any accepted body form, and whether the answer is a list (array or list-of-inputs forms). */
export function bodyInputs<T>(
  body: TaskBody | unknown[],
  fromObject: (body: TaskBody) => T,
): { inputs: T[]; isList: boolean } {
  if (Array.isArray(body)) return { inputs: body as T[], isList: true };
  if (body.inputs !== undefined) {
    return Array.isArray(body.inputs)
      ? { inputs: body.inputs as T[], isList: true }
      : { inputs: [body.inputs as T], isList: false };
  }
  return { inputs: [fromObject(body)], isList: false };
}

/** Options may sit at the top level (our form) or under `parameters` (Hugging Face form); top level wins. */
export function bodyOption<T>(body: TaskBody | unknown[], name: string): T | undefined {
  if (Array.isArray(body)) return undefined;
  return (body[name] ?? body.parameters?.[name]) as T | undefined;
}
