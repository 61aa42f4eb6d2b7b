import { createHash } from 'node:crypto';
import type { KeywardErrorCode } from '../errors.js';
import type { KeyUse } from '../keys/types.js';

/** Who caused an audit event. `instanceId` names the process that wrote it. */
export interface AuditActor {
  type: 'user' | 'scheduler' | 'system' | 'operator';
  /** A user id, an operator name or a scheduler job name; never a credential. */
  id?: string;
  instanceId: string;
}

/** How the audited operation ended. */
export type AuditOutcome = 'success' | 'failure' | 'denied';

/** Why a key rotation happened. */
export type RotationType = 'scheduled' | 'on_demand' | 'emergency';

/** Fields every audit event carries, whatever its `type`. */
export interface AuditEventBase {
  /** A random UUID. */
  id: string;
  /** ISO 8601 time the event was emitted. */
  time: string;
  actor: AuditActor;
  outcome: AuditOutcome;
  kid?: string;
  /** Field paths the scrubber dropped because they looked like a secret. */
  scrubbed?: string[];
  /** `hash` of the previous event in the chain (or the genesis value). */
  prevHash: string;
  /** sha256 (hex) of the canonical JSON of this event without `hash`. */
  hash: string;
}

/** The type-specific part of each audit event, keyed by `type`. */
export interface AuditEventFields {
  'key.generated': { kid: string; use: KeyUse; alg: string };
  'key.activated': { kid: string; use: KeyUse };
  'key.rotated': {
    kid: string;
    use: KeyUse;
    rotationType: RotationType;
    previousKid?: string;
    reason?: string;
    /** The new signing key started signing before it was in the JWKS for `jwksMaxAge`. */
    unpublished?: boolean;
  };
  'key.revoked': { kid: string; use?: KeyUse; reason: string };
  'key.retired': { kid: string; use?: KeyUse };
  /**
   * The keyring was re-sealed under another master key (master-key rotation). Master-key ids only
   * (`mk_…`, an HMAC of a constant), never key material. On failure: `masterKeyId` (the target)
   * and the error `code`.
   */
  'key.rekeyed': {
    previousMasterKeyId?: string;
    masterKeyId: string;
    /** Number of keys re-sealed. */
    keys?: number;
    /** Keyring generation the rekey committed. */
    generation?: number;
    code?: KeywardErrorCode;
  };
  /** A revoked data key's material was erased from the keyring once nothing was left under it. */
  'key.destroyed': { kid: string; use?: KeyUse; apiKeysRevoked?: number };
  /** A key was imported (`kw.keys.import`): kid, alg and state only, never material. */
  'key.imported': { kid: string; alg: string; state: 'active' | 'verify-only' };
  'token.issued': { sub: string; jti?: string; family?: string; scope?: string; tokenFingerprint?: string };
  'token.refreshed': { sub: string; family: string; tokenFingerprint?: string };
  'token.reuse_detected': { sub?: string; family: string; tokenFingerprint: string };
  'token.revoked': {
    level: 'token' | 'family' | 'subject';
    sub?: string;
    jti?: string;
    family?: string;
    tokenFingerprint?: string;
    reason?: string;
  };
  'apikey.created': { apiKeyId: string; sub?: string; scopes?: string[] };
  'apikey.revoked': { apiKeyId: string; reason?: string };
  'secret.rewrapped': { fromKid: string; kid: string; count: number; secretId?: string };
  'access.denied': {
    code: KeywardErrorCode;
    via?: 'jwt' | 'api_key';
    reason?: string;
    sub?: string;
    apiKeyId?: string;
    tokenFingerprint?: string;
    /** Set on the summary event the rate limiter emits: how many denials it dropped. */
    suppressed?: number;
    /** Set on the summary event: dropped denials counted by code. */
    suppressedByCode?: Partial<Record<KeywardErrorCode, number>>;
  };
  'sync.lag': { lagMs: number; version?: number };
  /**
   * A login or refresh refused by the brute-force limiter (HTTP 429). Rate-limited like
   * `access.denied` (one budget, one summary). The username only as a {@link fingerprint}.
   */
  'access.throttled': {
    route: 'login' | 'refresh';
    /** Which limit was reached. */
    limit: 'user' | 'address';
    retryAfterSec: number;
    /** {@link fingerprint} of the username (login). */
    userFingerprint?: string;
    /** The client address as the framework reports it (its trust-proxy setting decides). */
    address?: string;
  };
}

/** Every audit event type. */
export type AuditEventType = keyof AuditEventFields;

/** One audit event: a discriminated union on `type`. */
export type AuditEvent = {
  [T in AuditEventType]: AuditEventBase & { type: T } & AuditEventFields[T];
}[AuditEventType];

/**
 * What callers pass to `emit`: the type-specific fields, plus optionally the actor and outcome
 * (`outcome` defaults to `'denied'` for `access.denied`, else `'success'`; the actor to `system`).
 */
export type AuditEventInput = {
  [T in AuditEventType]: { type: T } & AuditEventFields[T] & {
      actor?: Omit<AuditActor, 'instanceId'>;
      outcome?: AuditOutcome;
      kid?: string;
    };
}[AuditEventType];

/**
 * The list of event types, for validation and docs.
 *
 * @example
 * ```ts
 * const known = AUDIT_EVENT_TYPES.includes(line.type);
 * ```
 */
export const AUDIT_EVENT_TYPES: readonly AuditEventType[] = [
  'key.generated',
  'key.activated',
  'key.rotated',
  'key.revoked',
  'key.retired',
  'key.rekeyed',
  'key.destroyed',
  'key.imported',
  'token.issued',
  'token.refreshed',
  'token.reuse_detected',
  'token.revoked',
  'apikey.created',
  'apikey.revoked',
  'secret.rewrapped',
  'access.denied',
  'sync.lag',
  'access.throttled',
];

/**
 * A short, stable, non-reversible fingerprint of a token or credential: `sha256:` plus the first
 * 16 hex digits of its SHA-256. The only form in which a token may appear in an audit event.
 *
 * @example
 * ```ts
 * audit.emit({ type: 'token.reuse_detected', family, tokenFingerprint: fingerprint(refreshToken) });
 * ```
 */
export function fingerprint(value: string): string {
  return `sha256:${createHash('sha256').update(value, 'utf8').digest('hex').slice(0, 16)}`;
}
