/**
 * Model entities → one IOB2 tag per dataset word, for seqeval.
 *
 * The dataset's words are joined with single spaces into the text the model sees, so word `i` covers
 * `[wordStart[i], wordStart[i] + words[i].length)`. The model's entities (aggregated by the server's code, e.g.
 * strategy `first`) carry character offsets; a word takes the type of the first entity that overlaps it, the first
 * word of each entity gets `B-` and the following ones `I-`. BERT splits on punctuation, so a dataset word can hold
 * several model words ("all-rounder", "1996-08-30"); a word already tagged by an earlier entity keeps that tag.
 */
export function wordOffsets(words: readonly string[]): [number, number][] {
  let at = 0;
  return words.map((word) => {
    const span: [number, number] = [at, at + word.length];
    at += word.length + 1;
    return span;
  });
}

export function entitiesToWordTags(
  words: readonly string[],
  entities: readonly { entity_group?: string; entity?: string; start: number; end: number }[],
): string[] {
  const spans = wordOffsets(words);
  const tags = new Array<string>(words.length).fill('O');
  const ordered = [...entities].sort((a, b) => a.start - b.start || a.end - b.end);
  for (const entity of ordered) {
    const type = (entity.entity_group ?? entity.entity ?? '').replace(/^[BIES]-/, '');
    if (type === '' || type === 'O') continue;
    let first = true;
    spans.forEach(([start, end], w) => {
      if (start >= entity.end || end <= entity.start || tags[w] !== 'O') return;
      tags[w] = `${first ? 'B' : 'I'}-${type}`;
      first = false;
    });
  }
  return tags;
}
