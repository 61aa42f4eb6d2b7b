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

/**
 * Runs `run`, expects it to throw a `KeywardError` with `code`, and returns the error so the
 * test can check its message and details.
 *
 * @example
 * ```ts
 * expect(expectKeywardError(() => resolveRotationPolicy({ publishLead: '1m' }), 'config_invalid').message).toContain('publishLead')
 * ```
 */
export function expectKeywardError<E extends Error & { code: string }>(run: () => unknown, code: string): E {
  try {
    run();
  } catch (err) {
    const actual = describeError(err);
    if (actual !== code) throw new Error(`expected a KeywardError ${code}, got ${actual}`);
    return err as E;
  }
  throw new Error(`expected a KeywardError ${code}, but nothing was thrown`);
}
