import { EvalError } from '../errors.js';
import { readDatasetText } from './read.js';

/** One SQuAD question with its context and gold answer texts (duplicates kept, as the official script does). */
export interface SquadItem {
  id: string;
  title: string;
  question: string;
  context: string;
  answers: string[];
  /** JSON path of the question, for messages. */
  where: string;
}

export interface SquadDataset {
  file: string;
  version: string;
  items: SquadItem[];
}

/** Line and column of a character position, for JSON syntax errors. */
function lineOf(text: string, position: number): string {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < position && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return `line ${line}, column ${position - lineStart + 1}`;
}

/**
 * SQuAD v1.1 JSON (`{"version", "data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question",
 * "answers": [{"text", "answer_start"}]}]}]}]}`), every field checked. Truncated or malformed JSON, a missing field,
 * a question without answers (SQuAD v2.0 unanswerable ones included: the v1.1 metric has no score for them), a
 * duplicate id or a file without questions → EvalError naming the file and the place.
 */
export function loadSquad(path: string): SquadDataset {
  const text = readDatasetText(path);
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (error) {
    const message = (error as Error).message;
    const position = /position (\d+)/.exec(message);
    // A syntax error at the very end (unexpected end, unterminated string) means the file stops early.
    const atEnd = position ? Number(position[1]) >= text.trimEnd().length - 1 : /end of JSON input/.test(message);
    const truncated = atEnd ? ' (the file looks truncated)' : '';
    throw new EvalError(
      path,
      `is not valid JSON${truncated}: ${message}`,
      position ? lineOf(text, Number(position[1])) : undefined,
    );
  }
  const fail = (where: string, problem: string): never => {
    throw new EvalError(path, problem, where);
  };
  const object = (value: unknown, where: string): Record<string, unknown> =>
    value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : fail(where, 'expected an object');
  const array = (value: unknown, where: string): unknown[] =>
    Array.isArray(value) ? value : fail(where, 'expected an array');
  const string = (value: unknown, where: string): string =>
    typeof value === 'string' ? value : fail(where, 'expected a string');

  const top = object(root, 'top level');
  const data = array(top.data, 'data');
  const items: SquadItem[] = [];
  const ids = new Set<string>();
  data.forEach((articleValue, a) => {
    const article = object(articleValue, `data[${a}]`);
    const title = typeof article.title === 'string' ? article.title : '';
    array(article.paragraphs, `data[${a}].paragraphs`).forEach((paragraphValue, p) => {
      const at = `data[${a}].paragraphs[${p}]`;
      const paragraph = object(paragraphValue, at);
      const context = string(paragraph.context, `${at}.context`);
      array(paragraph.qas, `${at}.qas`).forEach((qaValue, q) => {
        const where = `${at}.qas[${q}]`;
        const qa = object(qaValue, where);
        const id = string(qa.id, `${where}.id`);
        if (ids.has(id)) fail(where, `duplicate question id ${JSON.stringify(id)}`);
        ids.add(id);
        if (qa.is_impossible === true) {
          fail(where, `question ${id} is unanswerable (SQuAD v2.0); the v1.1 metric needs gold answers`);
        }
        const answers = array(qa.answers, `${where}.answers`).map((answer, i) =>
          string(object(answer, `${where}.answers[${i}]`).text, `${where}.answers[${i}].text`),
        );
        if (answers.length === 0) fail(where, `question ${id} has no gold answers`);
        items.push({ id, title, question: string(qa.question, `${where}.question`), context, answers, where });
      });
    });
  });
  if (items.length === 0) throw new EvalError(path, 'holds no questions');
  return { file: path, version: typeof top.version === 'string' ? top.version : 'unknown', items };
}
