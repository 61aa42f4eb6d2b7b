import type { VerifiedApiKey } from '../apikeys/types.js';
import type { JwtClaims, VerifiedJwt } from '../jwt/types.js';
import { VerifiedToken } from '../jwt/verified.js';
import type { ExternalVerifiedJwt } from '../tokens/issuers.js';

/**
 * Custom claims of your access tokens. Extend it by declaration merging to type `principal.claims`:
 *
 * @example
 * ```ts
 * declare module '@keyward/core/http' {
 *   interface KeywardClaims { tenant: string }
 * }
 * ```
 */
// biome-ignore lint/suspicious/noEmptyInterface: extended by declaration merging
export interface KeywardClaims {}

/**
 * Who made the request, however they authenticated. The same shape in every framework package.
 * Treat it as read-only: a JWT principal is frozen and shared by every request with that token.
 */
export interface Principal {
  sub: string;
  scopes: string[];
  roles: string[];
  claims: JwtClaims & Partial<KeywardClaims>;
  /** The access token's id (JWT only). */
  jti: string | undefined;
  /** The signing key (JWT only). */
  kid: string | undefined;
  via: 'jwt' | 'api_key';
  /** Epoch ms when the credential expires, or `undefined`. */
  expiresAt: number | undefined;
  /** The API key's id (API key only). */
  apiKeyId?: string;
  /**
   * The trusted external issuer (`trustedIssuers`) that vouched for the token: its `iss`, e.g.
   * `https://sso.example.com/realms/main`. Absent for keyward's own tokens and for API keys.
   */
  issuer?: string;
  /**
   * `true` when the token came from the cookie of cookie mode (the authenticator's `cookie`
   * option), not from a header: the browser sends a cookie on its own, so state-changing requests
   * carrying it pass the same-origin check. Absent for header credentials.
   */
  fromCookie?: true;
}

function scopesOf(claims: JwtClaims): string[] {
  if (typeof claims.scope === 'string') return claims.scope.split(' ').filter(Boolean);
  const scp = (claims as { scp?: unknown }).scp;
  return Array.isArray(scp) ? scp.filter((s): s is string => typeof s === 'string') : [];
}

/**
 * The principal of a verified access token. It is frozen: the same object serves every request
 * that presents the same token (the same way: `fromCookie` marks a token read from the cookie).
 * It is built once per verified token and kept with the verifier's result, which a verify-cache
 * hit returns again.
 */
export function principalFromJwt(verified: VerifiedJwt, options: { fromCookie?: boolean } = {}): Principal {
  const fromCookie = options.fromCookie === true;
  const kept = VerifiedToken.derived(verified) as Principal | undefined;
  if (kept !== undefined && (kept.fromCookie === true) === fromCookie) return kept;
  const principal = buildPrincipal(verified, undefined, fromCookie);
  VerifiedToken.keep(verified, principal);
  return principal;
}

/**
 * The principal of a token of a trusted external issuer: like {@link principalFromJwt} (scopes
 * from `scope` or `scp`, roles from `roles`), plus `issuer`. Frozen.
 */
export function principalFromExternalJwt(
  verified: ExternalVerifiedJwt,
  options: { fromCookie?: boolean } = {},
): Principal {
  return buildPrincipal(verified, verified.issuer, options.fromCookie === true);
}

/** The scopes or roles of a token that has none: one frozen array for all of them. */
const NONE: string[] = Object.freeze([]) as unknown as string[];

function buildPrincipal(verified: VerifiedJwt, issuer: string | undefined, fromCookie: boolean): Principal {
  const claims = verified.payload;
  const roles = (claims as { roles?: unknown }).roles;
  const scopes = scopesOf(claims);
  // One literal of a fixed shape, the optional members added after: spreading a conditional object
  // per member copied each through the runtime.
  const principal: Principal = {
    sub: typeof claims.sub === 'string' ? claims.sub : '',
    scopes: scopes.length === 0 ? NONE : (Object.freeze(scopes) as string[]),
    roles: Array.isArray(roles)
      ? (Object.freeze(roles.filter((r): r is string => typeof r === 'string')) as string[])
      : NONE,
    claims,
    jti: claims.jti,
    kid: verified.kid,
    via: 'jwt',
    expiresAt: claims.exp * 1000,
  };
  if (issuer !== undefined) principal.issuer = issuer;
  if (fromCookie) principal.fromCookie = true;
  return Object.freeze(principal);
}

/** The principal of a verified API key. */
export function principalFromApiKey(key: VerifiedApiKey): Principal {
  return {
    sub: key.owner,
    scopes: [...key.scopes],
    roles: [],
    claims: { sub: key.owner, exp: key.expiresAt === null ? 0 : Math.floor(key.expiresAt / 1000) },
    jti: undefined,
    kid: undefined,
    via: 'api_key',
    expiresAt: key.expiresAt ?? undefined,
    apiKeyId: key.id,
  };
}

/**
 * The owner key of a principal's own resources (API keys, secrets, the tokens it may revoke): its
 * `sub` for keyward's own tokens and API keys, and `<issuer>#<sub>` for a token of a trusted
 * external issuer — a `sub` is unique only per issuer, so an IdP user called `alice` never reaches
 * the resources of keyward's local `alice`.
 *
 * @example
 * ```ts
 * await kw.secrets.get(ownerOf(principal), 'github')
 * ```
 */
export function ownerOf(principal: Pick<Principal, 'sub' | 'issuer'>): string {
  return principal.issuer === undefined ? principal.sub : `${principal.issuer}#${principal.sub}`;
}
