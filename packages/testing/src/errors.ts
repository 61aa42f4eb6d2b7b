function describeError(err: unknown): string {
  const e = err as { name?: unknown; code?: unknown } | null;
  // Duck-typed: the error may come from another copy of @keyward/core (source vs dist).
  if (e && e.name === 'KeywardError' && typeof e.code === 'string') return e.code;
  return `not a KeywardError: ${String(err)}`;
}

/**
 * The stable `code` of the `KeywardError` a call throws (or a promise rejects with), `undefined`
 * when it succeeds, and `not a KeywardError: …` for any other error, so an assertion on the code
 * fails loudly.
 *
 * @example
 * ```ts
 * expect(codeOf(() => kw.jwt.verify(tampered))).toBe('token_signature_invalid')
 * expect(await codeOf(kw.tokens.refresh(spent))).toBe('refresh_token_reused')
 * ```
 */
export function codeOf(run: () => unknown): string | undefined;
export function codeOf(pending: Promise<unknown>): Promise<string | undefined>;
export function codeOf(
  target: (() => unknown) | Promise<unknown>,
): string | undefined | Promise<string | undefined> {
  if (typeof target !== 'function') return target.then(() => undefined, describeError);
  try {
    target();
  } catch (err) {
    return describeError(err);
  }
  return undefined;
}
