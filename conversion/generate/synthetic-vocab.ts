/** A small WordPiece vocabulary for generated checkpoints: specials, characters, continuation pieces and common words. */
const commonWords = `the of and to in a is that for it as was with be by on not he i this are or his from at which but
have an they you were her she there been one all we their has would when what if more no out so said can who up
about them into time only some could new other than then first its also two after over where most people years
like may many these made before through back much where way well even because any such between each just own
state work world year day life city country part number school name music team game war water history government
question answer context model sparse dense quantized bert network paris france london river king queen university
computer language music film series season league club album song football church court law army party president
century american english french german new york john david first second third north south east west
cafe zurich naive museum town old river bank`.split(/\s+/);

const characters =
  'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?\'"()-[]/&%$#@*+=<>_éèàüöäçñ'.split('');

export function syntheticVocabulary(): string[] {
  const vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
  const seen = new Set(vocab);
  const add = (token: string) => {
    if (!seen.has(token)) {
      seen.add(token);
      vocab.push(token);
    }
  };
  for (const c of characters) add(c);
  for (const c of characters) if (/[a-z0-9]/i.test(c)) add(`##${c}`);
  for (const word of commonWords) if (word) add(word);
  for (const word of commonWords) if (word.length > 3) add(`##${word.slice(-3)}`);
  return vocab;
}
