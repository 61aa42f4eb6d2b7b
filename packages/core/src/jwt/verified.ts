import type { JwtClaims, JwtHeader, VerifiedJwt } from './types.js';

/**
 * What the verifier returns: a frozen {@link VerifiedJwt}, which the verify cache hands to every
 * request that presents the same token, with one private slot for a value keyward's own layers
 * derive from it (the authenticator's principal). A cache hit finds that value with a field read
 * of an object it reads anyway, and a token verified once (the cache off, or a miss) costs no
 * `WeakMap` entry: a memo in a `WeakMap` cost 1.5–2.5 µs per uncached verify (an ephemeron entry
 * per token, and the collector's work on it). Freezing does not reach private fields.
 */
export class VerifiedToken implements VerifiedJwt {
  readonly payload: JwtClaims;
  readonly header: JwtHeader;
  readonly kid: string;
  #derived: unknown = undefined;

  constructor(payload: JwtClaims, header: JwtHeader, kid: string) {
    this.payload = payload;
    this.header = header;
    this.kid = kid;
    Object.freeze(this);
  }

  /** The value kept with `verified` by {@link VerifiedToken.keep}; `undefined` for any other object. */
  static derived(verified: VerifiedJwt): unknown {
    return #derived in verified ? verified.#derived : undefined;
  }

  /** Keeps `value` with `verified` when the verifier made it; does nothing for any other object. */
  static keep(verified: VerifiedJwt, value: unknown): void {
    if (#derived in verified) verified.#derived = value;
  }
}
