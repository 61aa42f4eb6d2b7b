/**
 * The `WWW-Authenticate` realm an authenticator answers with (its `realm` option), attached to the
 * errors it throws so `toHttpProblem` can build the challenge without being handed the option at
 * every call site. A WeakMap: nothing is kept alive, nothing is added to the error object.
 */
const realms = new WeakMap<object, string>();

/** Attaches `realm` to `err` (once: the innermost authenticator's realm wins). */
export function markRealm(err: unknown, realm: string): void {
  if (typeof err === 'object' && err !== null && !realms.has(err)) realms.set(err, realm);
}

/** The realm attached by {@link markRealm}, or `undefined`. */
export function realmOf(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null ? realms.get(err) : undefined;
}
