import { createHmac } from 'node:crypto';
import type { AuditEventInput } from '../audit/events.js';
import { KeywardError } from '../errors.js';
import type { Keyring } from '../keys/keyring.js';
import { storeEntries } from '../store/entries.js';
import type { Store } from '../store/types.js';
import type { ApiKeyInfo } from './types.js';

/** HKDF `info` of the API-key pepper, so it never equals any other key derived from a data key. */
export const PEPPER_INFO = 'keyward/apikey-pepper';
/**
 * Store channel on which revocations (`{"type":"revoke","id":…}`) and creations
 * (`{"type":"create","id":…}`) are published, so every instance drops its cached copy of a
 * revoked key and any "not found" it remembers for a new one.
 *
 * @example
 * ```ts
 * await store.subscribe(APIKEYS_CHANNEL, (message) => console.log(JSON.parse(message).id))
 * ```
 */
export const APIKEYS_CHANNEL = 'apikeys';

/** Store keys: the record, the per-owner index, and the batched last-used time. */
export const storeKeys = {
  record: (id: string) => `apikey:${id}`,
  // The owner's collection (`apikey-owner:<base64url owner>/`, members are ids); base64url has
  // no '/', so each owner is its own collection.
  ownerPrefix: (owner: string) => `apikey-owner:${Buffer.from(owner).toString('base64url')}/`,
  lastUsed: (id: string) => `apikey-used:${id}`,
};

/** An API key as stored: metadata plus the HMAC of its secret and the data key that peppered it. */
export interface ApiKeyRecord {
  v: 1;
  id: string;
  owner: string;
  name: string;
  scopes: string[];
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
  /** kid of the data key whose derived pepper keyed {@link ApiKeyRecord.hash}. */
  kid: string;
  /** base64url HMAC-SHA256(pepper, secret). */
  hash: string;
}

/** Parses a stored record; a corrupt one is a `store_error` (the store, not the caller, is wrong). */
export function parseRecord(raw: string, id: string): ApiKeyRecord {
  let value: Partial<ApiKeyRecord> | undefined;
  try {
    value = JSON.parse(raw) as Partial<ApiKeyRecord>;
  } catch {
    value = undefined;
  }
  if (
    value?.v !== 1 ||
    value.id !== id ||
    typeof value.owner !== 'string' ||
    typeof value.kid !== 'string' ||
    typeof value.hash !== 'string' ||
    !Array.isArray(value.scopes)
  ) {
    throw new KeywardError('store_error', 'stored API key record is corrupt', { details: { apiKeyId: id } });
  }
  return value as ApiKeyRecord;
}

/** The public view of a record. */
export function toInfo(record: ApiKeyRecord, lastUsedAt: number | null): ApiKeyInfo {
  return {
    id: record.id,
    prefix: `kw_${record.id}`,
    owner: record.owner,
    name: record.name,
    scopes: [...record.scopes],
    createdAt: record.createdAt,
    expiresAt: record.expiresAt,
    lastUsedAt,
    revokedAt: record.revokedAt,
  };
}

/**
 * Derives and memoises API-key peppers per keyring snapshot: a new snapshot (rotation,
 * revocation of a data key) starts afresh, so a revoked data key's pepper is never reused.
 */
export class PepperCache {
  readonly #bySnapshot = new WeakMap<Keyring, Map<string, Buffer | undefined>>();

  get(keyring: Keyring, kid: string): Buffer | undefined {
    let peppers = this.#bySnapshot.get(keyring);
    if (!peppers) {
      peppers = new Map();
      this.#bySnapshot.set(keyring, peppers);
    }
    if (!peppers.has(kid)) peppers.set(kid, keyring.dataKeyPepper(kid, PEPPER_INFO));
    return peppers.get(kid);
  }
}

/** HMAC-SHA256 of the secret part under a pepper. */
export function hashSecret(pepper: Buffer, secret: string): Buffer {
  return createHmac('sha256', pepper).update(secret).digest();
}

/**
 * How many live (unrevoked) API keys are still hashed under the pepper of data key `kid`. Such a
 * key cannot be rewrapped (only its holder knows the secret; it is rehashed when next used), so
 * the data key must not retire while this is above zero.
 *
 * @example
 * ```ts
 * if ((await countApiKeysPinnedTo(store, kid)) === 0) await core.keys.retireDataKey(kid, 0)
 * ```
 */
export async function countApiKeysPinnedTo(store: Store, kid: string): Promise<number> {
  let count = 0;
  for await (const { value } of storeEntries(store, 'scan', storeKeys.record(''))) {
    try {
      const record = JSON.parse(value) as Partial<ApiKeyRecord>;
      if (record.kid === kid && !record.revokedAt) count++;
    } catch {
      count++; // unreadable: be safe, keep the key
    }
  }
  return count;
}

/**
 * Revokes every live API key hashed under the pepper of data key `kid`: what happens to them when
 * that data key is revoked as compromised. They cannot be rehashed (only their holders know the
 * secret) and keeping them verifying would keep the compromised key's material alive, so they are
 * invalidated at once (`api_key_revoked`); each revocation is published on {@link APIKEYS_CHANNEL}
 * (every instance drops its cached copy) and audited as `apikey.revoked`. Resolves how many were revoked.
 *
 * @example
 * ```ts
 * const revoked = await revokeApiKeysPinnedTo(core, leakedKid)
 * ```
 */
export async function revokeApiKeysPinnedTo(
  core: { store: Store; now: () => number; audit: { emit(event: AuditEventInput): unknown } },
  kid: string,
): Promise<number> {
  const { store } = core;
  let revoked = 0;
  for await (const { key, value } of storeEntries(store, 'scan', storeKeys.record(''))) {
    let raw: string | null = value;
    for (let attempt = 0; attempt < 5 && raw !== null; attempt++) {
      let record: ApiKeyRecord;
      try {
        record = JSON.parse(raw) as ApiKeyRecord;
      } catch {
        break; // unreadable: it cannot verify either
      }
      if (record.kid !== kid || record.revokedAt) break;
      const next = JSON.stringify({ ...record, revokedAt: core.now() });
      if (await store.compareAndSet(key, raw, next)) {
        revoked += 1;
        await store
          .publish(APIKEYS_CHANNEL, JSON.stringify({ type: 'revoke', id: record.id }))
          .catch(() => undefined); // stored; caches expire within their TTL
        core.audit.emit({
          type: 'apikey.revoked',
          apiKeyId: record.id,
          reason: 'data key revoked',
          actor: { type: 'scheduler', id: 'rewrap' },
        });
        break;
      }
      raw = await store.get(key);
    }
  }
  return revoked;
}
