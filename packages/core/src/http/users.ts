import { createHash, timingSafeEqual } from 'node:crypto';
import { KeywardError } from '../errors.js';

/** A user found by {@link UserDirectory.verify}. */
export interface AuthenticatedUser {
  sub: string;
  scopes: string[];
}

/** Checks a username and password. Your app brings its own (a database, an IdP…). */
export interface UserDirectory {
  verify(username: string, password: string): Promise<AuthenticatedUser | undefined>;
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
