/** A lone UTF-16 surrogate: `\p{Cs}` under the `u` flag matches only unpaired halves. */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Whether `value` is well-formed Unicode (no lone surrogate). A lone surrogate makes
 * `encodeURIComponent` throw `URIError` and turns into U+FFFD in `Buffer.from`, so two different
 * identifiers would share a store key; identifiers must be checked with this first.
 */
export function isWellFormedUnicode(value: string): boolean {
  return !LONE_SURROGATE.test(value);
}
