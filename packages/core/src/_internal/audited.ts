/**
 * Errors whose denial has already been audited as `access.denied`, so a caller further up (the
 * HTTP authenticator) does not emit a second event for the same request. A WeakSet: nothing is
 * kept alive, nothing is added to the error object.
 */
const audited = new WeakSet<object>();

/** Marks `err` as audited. */
export function markAudited(err: object): void {
  audited.add(err);
}

/** True when `err` was marked by {@link markAudited}. */
export function wasAudited(err: unknown): boolean {
  return typeof err === 'object' && err !== null && audited.has(err);
}
