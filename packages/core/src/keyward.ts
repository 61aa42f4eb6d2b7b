import { createKeywardCore, type KeywardCore } from './core.js';
import type { KeywardOptions } from './options.js';

export * from './core.js';

/**
 * A running keyward instance: the keyring and JWT hot path of {@link KeywardCore}, plus the
 * services built on it. Create it with {@link createKeyward}; close it on shutdown.
 */
export interface Keyward extends KeywardCore {
  /** Sessions: access + refresh tokens, logout, one-time tokens. */
  readonly tokens: TokenService;
  /** API keys `kw_<id>_<secret>`. */
  readonly apiKeys: ApiKeyService;
  /** Per-subject secrets, Fernet-encrypted under the data keys. */
  readonly secrets: SecretService;
  /** An `application/health+json` report (keys, store, sync). */
  health(options?: { ready?: boolean }): Promise<HealthReport>;
}

/**
 * Creates a keyward instance: loads the master key, opens (or bootstraps) the keyring, starts
 * sync, wires the JWT hot path and the services.
 *
 * @example
 * ```ts
 * import { createKeyward } from '@keyward/core'
 *
 * const kw = await createKeyward({ dir: './.keyward', issuer: 'https://api.example.com' })
 * const token = kw.jwt.sign({ sub: 'user_1', scope: 'read' })
 * const { payload } = kw.jwt.verify(token)
 * await kw.close()
 * ```
 */
export async function createKeyward(options: KeywardOptions = {}): Promise<Keyward> {
  const core = await createKeywardCore(options);
  return core;
}
