import { createKeywardCore, type KeywardCore } from './core.js';
import type { KeywardOptions } from './options.js';

export * from './core.js';

/**
 * A running keyward instance: the keyring and JWT hot path of {@link KeywardCore}, plus the
 * services built on it. Create it with {@link createKeyward}; close it on shutdown.
 */
export interface Keyward extends KeywardCore {}

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
