import { existsSync, readFileSync, statSync } from 'node:fs';
import { EvalError } from '../errors.js';

/** A dataset file as text: missing, a folder, empty or not UTF-8 → EvalError naming the file. */
export function readDatasetText(path: string): string {
  const bytes = readDatasetBytes(path);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new EvalError(path, 'is not UTF-8 text');
  }
  if (text.trim() === '') throw new EvalError(path, 'is empty');
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

export function readDatasetBytes(path: string): Buffer {
  if (!existsSync(path)) throw new EvalError(path, 'does not exist');
  if (!statSync(path).isFile()) throw new EvalError(path, 'is not a file');
  const bytes = readFileSync(path);
  if (bytes.length === 0) throw new EvalError(path, 'is empty');
  return bytes;
}

/** Lines without their terminators (`\n` or `\r\n`); a final terminator does not make an extra line. */
export function splitLines(text: string): string[] {
  const lines = text.split('\n').map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}
