import { createHash, timingSafeEqual } from 'node:crypto';
import { isKeywardError, KeywardError } from '../errors.js';
import { RESERVED_CLAIMS } from '../tokens/records.js';
import type { IssueTokensInput, TokenPair, TokenService } from '../tokens/types.js';

/** A user found by {@link UserDirectory.verify}. */
export interface AuthenticatedUser {
  sub: string;
  scopes: string[];
  /**
   * Roles for the `roles` claim of the tokens `POST /auth/login` mints (and every refresh of that
   * session): `principal.roles`, what `requireRoles` checks. Non-empty strings.
   */
  roles?: string[];
  /**
   * Custom claims for those tokens (`principal.claims`, typed by `KeywardClaims`): JSON, at most
   * 8 KiB. Registered and reserved names are refused (`user_claims_invalid`, a 500: the
   * directory's mistake, never the caller's): `iss`, `sub`, `aud`, `exp`, `nbf`, `iat`, `jti`,
   * `scope`, `client_id`, `roles` (use the `roles` field) and any `kw_*`.
   */
  claims?: Record<string, unknown>;
}

/**
 * Checks a username and password. Your app brings its own (a database, an IdP…).
 *
 * @example
 * ```ts
 * const users: UserDirectory = {
 *   async verify(username, password) {
 *     const user = await db.checkPassword(username, password)
 *     return user && { sub: user.id, scopes: ['read'], roles: user.roles, claims: { tenant: user.tenant } }
 *   },
 * }
 * ```
 */
export interface UserDirectory {
  verify(username: string, password: string): Promise<AuthenticatedUser | undefined>;
}

const userClaimsInvalid = (message: string) =>
  new KeywardError('user_claims_invalid', `UserDirectory.verify returned ${message}`);

/**
 * The token input of a user {@link UserDirectory.verify} returned: its scopes, its `roles` as the
 * `roles` claim and its custom `claims`. Throws `user_claims_invalid` for reserved claim names or
 * roles that are not non-empty strings.
 */
export function tokenInputOf(user: AuthenticatedUser): IssueTokensInput {
  const { roles, claims } = user;
  if (
    roles !== undefined &&
    !(Array.isArray(roles) && roles.every((r) => typeof r === 'string' && r !== ''))
  ) {
    throw userClaimsInvalid('"roles" that are not an array of non-empty strings');
  }
  if (claims !== undefined && (typeof claims !== 'object' || claims === null || Array.isArray(claims))) {
    throw userClaimsInvalid('"claims" that are not an object');
  }
  const reserved = Object.keys(claims ?? {}).filter(
    (name) => RESERVED_CLAIMS.has(name) || name === 'roles' || name.startsWith('kw_'),
  );
  if (reserved.length > 0) {
    throw userClaimsInvalid(`reserved claims that keyward sets itself: ${reserved.join(', ')}`);
  }
  const all = {
    ...(claims ?? {}),
    ...(roles !== undefined && roles.length > 0 ? { roles: [...roles] } : {}),
  };
  return {
    sub: user.sub,
    scopes: user.scopes,
    ...(Object.keys(all).length > 0 ? { claims: all } : {}),
  };
}

/**
 * Issues the token pair of a login: {@link tokenInputOf} the user, with the token service's own
 * refusal of the claims (too large, too deep, not JSON) as `user_claims_invalid` too.
 */
export async function issueForUser(
  tokens: Pick<TokenService, 'issue'>,
  user: AuthenticatedUser,
): Promise<TokenPair> {
  const input = tokenInputOf(user);
  try {
    return await tokens.issue(input);
  } catch (err) {
    if (isKeywardError(err, 'invalid_request') && err.details?.field === 'claims') {
      throw userClaimsInvalid(`"claims" keyward cannot put in a token (${err.message})`);
    }
    throw err;
  }
}

const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();

/**
 * A fixed user list for demos and tests, from the `DEMO_USERS` format
 * `name:password:scope1 scope2,name2:password2:scope`. Passwords are compared in constant time.
 * Not for production: use your own {@link UserDirectory}.
 *
 * @example
 * ```ts
 * const users = staticUsers(process.env.DEMO_USERS ?? 'alice:alice-password:read')
 * ```
 */
export function staticUsers(spec: string): UserDirectory {
  const users = new Map<string, { password: Buffer; scopes: string[] }>();
  for (const entry of spec
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)) {
    const [name, password, scopes = ''] = entry.split(':');
    if (!name || password === undefined || password === '') {
      throw new KeywardError(
        'config_invalid',
        'DEMO_USERS entries must look like name:password:scope1 scope2',
      );
    }
    users.set(name, { password: digest(password), scopes: scopes.split(' ').filter(Boolean) });
  }
  const dummy = digest('');
  return {
    async verify(username, password) {
      const user = users.get(username);
      // Compare digests of equal length, and compare even for unknown users, so timing tells nothing.
      const ok = timingSafeEqual(user?.password ?? dummy, digest(password)) && user !== undefined;
      return ok ? { sub: username, scopes: [...user.scopes] } : undefined;
    },
  };
}
