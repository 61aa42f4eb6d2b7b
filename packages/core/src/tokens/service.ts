import { fingerprint } from '../audit/events.js';
import type { KeywardCore } from '../core.js';
import { KeywardError } from '../errors.js';
import { decodeJsonObject, MAX_JSON_DEPTH } from '../jwt/header.js';
import { FamilyRepository } from './families.js';
import { consumeOneTimeToken, createOneTimeToken } from './one-time.js';
import {
  badInput,
  checkSub,
  type FamilyRecord,
  hashIfWellFormed,
  hashToken,
  keys,
  MAX_CUSTOM_CLAIMS_BYTES,
  newId,
  newOpaqueToken,
  parseRecord,
  RESERVED_CLAIMS,
  type RefreshRecord,
  readSigned,
} from './records.js';
import type { IssueTokensInput, LogoutInput, RefreshTokenInfo, TokenPair, TokenService } from './types.js';

/**
 * Options of {@link createTokenService}.
 *
 * @example
 * ```ts
 * const options: TokenServiceOptions = { refreshTtlSec: 7 * 86400, refreshReuseIntervalMs: 5000 }
 * ```
 */
export interface TokenServiceOptions {
  /** Refresh-token lifetime in seconds; each rotation starts a new one. Default 30 days. */
  refreshTtlSec?: number;
  /**
   * How long after a refresh token is spent presenting it again returns the same successor pair
   * (two browser tabs refreshing at once) instead of counting as reuse. Default 2000 ms.
   */
  refreshReuseIntervalMs?: number;
  /**
   * How many of a family's most recently spent refresh tokens are remembered for reuse detection
   * (1..1000). Presenting one of them after `refreshReuseIntervalMs` revokes the family; a token
   * spent longer ago than that many refreshes has lost its marker and is refused as unknown
   * (`refresh_token_invalid`) without revoking anything. This bounds a session's store footprint:
   * it no longer grows with the number of refreshes. Default 16.
   */
  reuseDetectionDepth?: number;
}

const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/; // RFC 6749 §3.3 scope-token
/** Rounds of read → compare-and-set before a refresh gives up (each lost round means another caller won). */
const REFRESH_ATTEMPTS = 4;

/**
 * Custom claims ride in every access token of the family (and its stored record): refuse more than
 * {@link MAX_CUSTOM_CLAIMS_BYTES} serialized, and what keyward's verifier would refuse anyway
 * (nesting deeper than {@link MAX_JSON_DEPTH}), at issue time instead of at every verify.
 */
function checkClaimsSize(claims: Record<string, unknown>): void {
  let json: string;
  try {
    json = JSON.stringify(claims);
  } catch {
    throw badInput('claims', 'JSON-serialisable');
  }
  const size = Buffer.byteLength(json);
  if (size > MAX_CUSTOM_CLAIMS_BYTES) {
    throw new KeywardError(
      'invalid_request',
      `claims must serialize to at most ${MAX_CUSTOM_CLAIMS_BYTES} bytes of JSON (got ${size})`,
      { details: { field: 'claims', limit: MAX_CUSTOM_CLAIMS_BYTES, size } },
    );
  }
  if (decodeJsonObject(Buffer.from(json)) === 'too_deep') {
    throw badInput('claims', `nested at most ${MAX_JSON_DEPTH} levels deep`);
  }
}

function invalidRefresh(): KeywardError {
  return new KeywardError('refresh_token_invalid', 'refresh token is unknown, expired or revoked');
}

/**
 * Creates the session service: access tokens (JWS) plus opaque refresh tokens that rotate on every
 * use, grouped in families with reuse detection (OAuth 2.0 Security BCP §4.14), logout, logout
 * everywhere and one-time tokens. The store holds token hashes only.
 *
 * @example
 * ```ts
 * const tokens = createTokenService(core, { refreshTtlSec: 14 * 86400 })
 * const pair = await tokens.issue({ sub: 'user_1', scopes: ['read'] })
 * const next = await tokens.refresh(pair.refresh_token)
 * await tokens.logout({ refreshToken: next.refresh_token })
 * ```
 */
export function createTokenService(core: KeywardCore, options: TokenServiceOptions = {}): TokenService {
  const refreshTtlSec = options.refreshTtlSec ?? 30 * 24 * 3600;
  if (!Number.isFinite(refreshTtlSec) || refreshTtlSec <= 0) {
    throw new KeywardError(
      'config_invalid',
      `refreshTtlSec (${refreshTtlSec}) must be a positive number of seconds`,
    );
  }
  const reuseIntervalMs = options.refreshReuseIntervalMs ?? 2000;
  if (!Number.isFinite(reuseIntervalMs) || reuseIntervalMs < 0 || reuseIntervalMs > 60_000) {
    throw new KeywardError(
      'config_invalid',
      `refreshReuseIntervalMs (${reuseIntervalMs}) must be within 0..60000 ms`,
    );
  }
  const depth = options.reuseDetectionDepth ?? 16;
  if (!Number.isInteger(depth) || depth < 1 || depth > 1000) {
    throw new KeywardError(
      'config_invalid',
      `reuseDetectionDepth (${depth}) must be an integer within 1..1000`,
    );
  }
  const ttlMs = refreshTtlSec * 1000;
  const { store, now, audit, metrics } = core;
  const families = new FamilyRepository(core, depth);

  /** Signs an access token and draws a refresh token for `family`. */
  function mint(family: Pick<FamilyRecord, 'sub' | 'scopes' | 'claims'>) {
    const scope = family.scopes.join(' ');
    const access = core.jwt.sign({ ...family.claims, sub: family.sub, ...(scope ? { scope } : {}) });
    const signed = readSigned(access);
    metrics.recordIssue('sig', signed.alg);
    const refresh = newOpaqueToken('refresh');
    const pair: TokenPair = {
      access_token: access,
      refresh_token: refresh,
      token_type: 'Bearer',
      expires_in: core.options.accessTokenTtlSec,
    };
    return { pair, hash: hashToken(refresh), jti: signed.jti, expMs: signed.exp * 1000 };
  }

  /** Writes the record of a family's new current token, expiring with the family (`expiresAt`). */
  async function storeActive(hash: string, familyId: string, expiresAt: number): Promise<void> {
    const record: RefreshRecord = { family: familyId, state: 'active', expiresAt };
    await store.set(keys.token(hash), JSON.stringify(record), { ttlMs: Math.max(1, expiresAt - now()) });
  }

  /** The successor pair, sealed with the active data key: never in clear in the store. */
  function seal(pair: TokenPair): string {
    const key = core.keys.snapshot().dataKey();
    return JSON.stringify({ kid: key.kid, sealed: key.fernet.encrypt(JSON.stringify(pair)) });
  }

  function unseal(raw: string | null): TokenPair | undefined {
    const box = parseRecord<{ kid: string; sealed: string }>(raw);
    const key = box && core.keys.snapshot().dataKeyById(box.kid);
    if (!box || !key) return undefined;
    try {
      return JSON.parse(key.fernet.decryptString(box.sealed)) as TokenPair;
    } catch {
      return undefined;
    }
  }

  /** A spent token presented again: the same pair inside the interval, family revocation after it. */
  async function replay(token: string, record: RefreshRecord, family: FamilyRecord): Promise<TokenPair> {
    if (record.spentAt !== undefined && now() - record.spentAt <= reuseIntervalMs && record.successor) {
      const pair = unseal(await store.get(keys.pair(record.successor)));
      if (pair) return pair;
      throw invalidRefresh();
    }
    if (await families.revoke(family.id, 'refresh_token_reused')) {
      metrics.recordReuseDetected();
      audit.emit({
        type: 'token.reuse_detected',
        sub: family.sub,
        family: family.id,
        tokenFingerprint: fingerprint(token),
        outcome: 'denied',
      });
    }
    throw new KeywardError('refresh_token_reused', 'refresh token was already used; its session is revoked', {
      details: { family: family.id },
    });
  }

  async function refresh(token: string): Promise<TokenPair> {
    const hash = hashIfWellFormed(token, 'refresh');
    if (hash === undefined) throw invalidRefresh();
    for (let attempt = 0; attempt < REFRESH_ATTEMPTS; attempt++) {
      const raw = await store.get(keys.token(hash));
      const record = parseRecord<RefreshRecord>(raw);
      if (raw === null || !record || record.expiresAt <= now()) throw invalidRefresh();
      const family = (await families.read(record.family))?.family;
      if (!family || family.revoked || family.expiresAt <= now()) throw invalidRefresh();
      if (record.state === 'spent') return replay(token, record, family);

      const next = mint(family);
      const expiresAt = now() + ttlMs;
      // Successor and sealed pair are written before the spend, so a caller that loses the
      // compare-and-set below always finds the winner's pair.
      await storeActive(next.hash, family.id, expiresAt);
      await store.set(keys.pair(next.hash), seal(next.pair), { ttlMs: Math.max(1, reuseIntervalMs) });
      const spent: RefreshRecord = { ...record, state: 'spent', spentAt: now(), successor: next.hash };
      // The spent-token marker never outlives the family (nor the token's own lifetime).
      const won = await store.compareAndSet(keys.token(hash), raw, JSON.stringify(spent), {
        ttlMs: Math.max(1, Math.min(record.expiresAt, family.expiresAt) - now()),
      });
      if (!won) {
        await Promise.all([store.delete(keys.token(next.hash)), store.delete(keys.pair(next.hash))]);
        continue;
      }
      await families.recordAccess(family.id, next.jti, next.expMs, expiresAt);
      if (!(await families.advance(family.id, hash, next.hash, expiresAt))) {
        // Revoked between our read and the spend: the minted access token must not outlive it.
        await core.revocations.revokeToken(next.jti, next.expMs);
        throw invalidRefresh();
      }
      metrics.recordRefresh();
      audit.emit({
        type: 'token.refreshed',
        sub: family.sub,
        family: family.id,
        tokenFingerprint: fingerprint(token),
      });
      return next.pair;
    }
    throw new KeywardError('store_conflict', 'refresh token kept changing; try again');
  }

  return {
    async issue(input: IssueTokensInput): Promise<TokenPair> {
      const sub = checkSub(input?.sub);
      if (input.scopes !== undefined && !Array.isArray(input.scopes)) throw badInput('scopes', 'an array');
      if (
        input.claims !== undefined &&
        (typeof input.claims !== 'object' || input.claims === null || Array.isArray(input.claims))
      ) {
        throw badInput('claims', 'an object');
      }
      const scopes = [...(input.scopes ?? [])];
      if (!scopes.every((s) => typeof s === 'string' && SCOPE_TOKEN.test(s))) {
        throw badInput(
          'scopes',
          'an array of scope tokens (RFC 6749 §3.3: no spaces, quotes or backslashes)',
        );
      }
      const claims = { ...(input.claims ?? {}) };
      const reserved = Object.keys(claims).filter((name) => RESERVED_CLAIMS.has(name));
      if (reserved.length > 0) {
        throw badInput('claims', `free of reserved claims (found: ${reserved.join(', ')})`);
      }
      checkClaimsSize(claims);
      const id = newId();
      const first = mint({ sub, scopes, claims });
      const at = now();
      const expiresAt = at + ttlMs;
      await families.recordAccess(id, first.jti, first.expMs, expiresAt);
      await families.create({
        id,
        sub,
        scopes,
        claims,
        createdAt: at,
        current: first.hash,
        revoked: false,
        expiresAt,
        spent: [],
      });
      await storeActive(first.hash, id, expiresAt);
      audit.emit({
        type: 'token.issued',
        sub,
        jti: first.jti,
        family: id,
        ...(scopes.length ? { scope: scopes.join(' ') } : {}),
        tokenFingerprint: fingerprint(first.pair.refresh_token),
      });
      return first.pair;
    },

    refresh,

    async inspectRefresh(token: string): Promise<RefreshTokenInfo | undefined> {
      const hash = hashIfWellFormed(token, 'refresh');
      if (hash === undefined) return undefined;
      // Reads only: looking at a token must not spend it, slide its TTL or count as reuse.
      const record = parseRecord<RefreshRecord>(await store.get(keys.token(hash)));
      if (record?.state !== 'active' || record.expiresAt <= now()) return undefined;
      const family = (await families.read(record.family))?.family;
      if (!family || family.revoked || family.expiresAt <= now() || family.current !== hash) return undefined;
      return {
        sub: family.sub,
        scopes: [...family.scopes],
        claims: { ...family.claims },
        family: family.id,
        createdAt: family.createdAt,
        expiresAt: record.expiresAt,
      };
    },

    async logout(input: LogoutInput): Promise<void> {
      const { access, refreshToken } = input ?? {};
      if (!access && refreshToken === undefined)
        throw badInput('logout input', 'an access token or a refresh token');
      if (access?.jti !== undefined && Number.isFinite(access.exp)) {
        await core.revocations.revokeToken(access.jti, access.exp * 1000);
        audit.emit({
          type: 'token.revoked',
          level: 'token',
          jti: access.jti,
          ...(access.sub ? { sub: access.sub } : {}),
          reason: 'logout',
        });
      }
      // Logging out twice, or with a stale refresh token, succeeds quietly: the session is gone either way.
      const hash = hashIfWellFormed(refreshToken, 'refresh');
      if (!refreshToken || hash === undefined) return;
      const record = parseRecord<RefreshRecord>(await store.get(keys.token(hash)));
      const family = record && (await families.read(record.family))?.family;
      if (!family || (access?.sub !== undefined && access.sub !== family.sub)) return;
      if (await families.revoke(family.id, 'logout')) {
        audit.emit({
          type: 'token.revoked',
          level: 'family',
          sub: family.sub,
          family: family.id,
          tokenFingerprint: fingerprint(refreshToken),
          reason: 'logout',
        });
      }
    },

    async logoutEverywhere(sub: string): Promise<void> {
      checkSub(sub);
      await core.revocations.revokeSubject(sub);
      for (const id of await families.idsOf(sub)) await families.revoke(id, 'logout_everywhere');
      audit.emit({ type: 'token.revoked', level: 'subject', sub, reason: 'logout_everywhere' });
    },

    oneTime: (input) => createOneTimeToken(core, input),
    consumeOneTime: (token, purpose) => consumeOneTimeToken(core, token, purpose),
  };
}
