import type { KeywardCore } from '../core.js';
import { createDataCipher, type DataCipher } from '../data/cipher.js';
import { type RewrapTarget, versionedJsonField } from '../data/rewrap.js';
import { KeywardError } from '../errors.js';
import { storeEntries } from '../store/entries.js';
import {
  checkIdentifier,
  MAX_DESCRIPTION_LENGTH,
  MAX_NAME_LENGTH,
  MAX_OWNER_LENGTH,
  MAX_VALUE_BYTES,
  nameOfKey,
  openSecretValue,
  ownerPrefix,
  parseSecretKey,
  parseSecretRecord,
  readSecretEnvelope,
  SECRET_PREFIX,
  type SecretRecord,
  sealSecretValue,
  secretKey,
} from './record.js';
import type { SecretInfo, SecretService } from './types.js';

const LIST_PAGE = 500;

function checkValue(value: unknown): string {
  if (typeof value !== 'string' || Buffer.byteLength(value, 'utf8') > MAX_VALUE_BYTES) {
    throw new KeywardError('invalid_argument', `value must be a string of at most ${MAX_VALUE_BYTES} bytes`, {
      details: { option: 'value' },
    });
  }
  return value;
}

function checkDescription(description: unknown): string | undefined {
  if (description === undefined) return undefined;
  if (typeof description !== 'string' || description.length > MAX_DESCRIPTION_LENGTH) {
    throw new KeywardError(
      'invalid_argument',
      `description must be a string of at most ${MAX_DESCRIPTION_LENGTH} characters`,
      { details: { option: 'description' } },
    );
  }
  return description;
}

/**
 * Creates the secret service of a keyward core: per-owner secrets (an IdP client secret, a user's
 * third-party API token), each value encrypted with the data cipher under the active data key and
 * stored at `secret:<owner>/<name>`. Values never reach a log, an error message or an audit event.
 * The rewrap job re-encrypts them after a data-key rotation (see {@link SECRETS_REWRAP_TARGET}).
 *
 * @example
 * ```ts
 * const secrets = createSecretService(core)
 * await secrets.put('user_1', 'github', 'ghp_…', { description: 'GitHub PAT' })
 * await secrets.get('user_1', 'github')   // 'ghp_…'
 * await secrets.list('user_1')            // [{ name: 'github', description: 'GitHub PAT', updatedAt }]
 * await secrets.delete('user_1', 'github') // true
 * ```
 */
export function createSecretService(
  core: Pick<KeywardCore, 'store' | 'keys' | 'now'>,
  cipher: DataCipher = createDataCipher(core),
): SecretService {
  const { store } = core;
  const checked = (owner: unknown, name: unknown) => ({
    owner: checkIdentifier(owner, 'owner', MAX_OWNER_LENGTH),
    name: checkIdentifier(name, 'name', MAX_NAME_LENGTH),
  });
  const owned = (owner: unknown, name: unknown) => {
    const id = checked(owner, name);
    return secretKey(id.owner, id.name);
  };

  return {
    async put(owner, name, value, options = {}) {
      const id = checked(owner, name);
      const key = secretKey(id.owner, id.name);
      const plaintext = sealSecretValue(id.owner, id.name, checkValue(value));
      const description = checkDescription(options.description);
      const previous = await store.get(key);
      const now = core.now();
      const record: SecretRecord = {
        v: 2,
        value: cipher.encrypt(plaintext),
        ...(description !== undefined ? { description } : {}),
        createdAt: previous === null ? now : safeCreatedAt(previous, now),
        updatedAt: now,
      };
      await store.set(key, JSON.stringify(record));
    },
    async get(owner, name) {
      const id = checked(owner, name);
      const raw = await store.get(secretKey(id.owner, id.name));
      if (raw === null) return undefined;
      // A legacy (v1, unbound) plaintext still reads until the rewrap job binds it.
      return openSecretValue(cipher.decryptString(parseSecretRecord(raw).value), id.owner, id.name);
    },
    async list(owner) {
      const prefix = ownerPrefix(checkIdentifier(owner, 'owner', MAX_OWNER_LENGTH));
      const out: SecretInfo[] = [];
      for await (const entry of storeEntries(store, 'list', prefix, { limit: LIST_PAGE })) {
        const record = parseSecretRecord(entry.value);
        out.push({
          name: nameOfKey(prefix, entry.key),
          ...(record.description !== undefined ? { description: record.description } : {}),
          updatedAt: record.updatedAt,
        });
      }
      // Redis SCAN may return a key twice; names are unique per owner.
      const unique = new Map(out.map((info) => [info.name, info]));
      return [...unique.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    },
    async delete(owner, name) {
      return store.delete(owned(owner, name));
    },
  };
}

function safeCreatedAt(previous: string, fallback: number): number {
  try {
    return parseSecretRecord(previous).createdAt ?? fallback;
  } catch {
    return fallback;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Where secrets keep their ciphertext, for the rewrap job. The pass also migrates legacy (`v: 1`)
 * records: their bare plaintext is bound to the owner and name of their store key
 * ({@link SecretEnvelope}) and the record becomes `v: 2`. A bound plaintext is left as it is, even one
 * bound to another key (a copied record stays refused on read).
 *
 * @example
 * ```ts
 * await createRewrapJob(core, { ...SECRETS_REWRAP_TARGET }).run()
 * ```
 */
export const SECRETS_REWRAP_TARGET: RewrapTarget = Object.freeze({
  prefixes: [SECRET_PREFIX],
  // Every plaintext a pass writes is bound to its key (migrate ran on any v1 record): v2.
  ...versionedJsonField('value', 2),
  migrate(plaintext: Uint8Array, key: string): Uint8Array | undefined {
    // A record no secret read can reach (a key that names no owner and name, a non-UTF-8 value) is
    // only re-encrypted, never left behind: it must not keep its data key from retiring.
    const id = parseSecretKey(key);
    let text: string;
    try {
      text = utf8.decode(plaintext);
    } catch {
      return undefined;
    }
    if (id === undefined || readSecretEnvelope(text) !== undefined) return undefined;
    return new TextEncoder().encode(sealSecretValue(id.owner, id.name, text));
  },
});
