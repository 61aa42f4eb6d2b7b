import type { KeyRecord, KeyState } from '../types.js';

export const MIN = 60_000;
export const HOUR = 60 * MIN;
export const DAY = 24 * HOUR;
/** The instant every test keyring starts from. */
export const T0 = Date.UTC(2025, 0, 1);

/** A signing-key record in `state`, with the timestamps that state needs (overridable). */
export function key(kid: string, state: KeyState, over: Partial<KeyRecord> = {}): KeyRecord {
  const base: KeyRecord = { kid, use: 'sig', alg: 'EdDSA', state, origin: 'generated', createdAt: T0 };
  if (state !== 'pending') base.activatedAt = T0;
  if (state === 'retiring') Object.assign(base, { retiringAt: T0 + DAY, verifyUntil: T0 + DAY + 31 * MIN });
  if (state === 'retired') Object.assign(base, { retiringAt: T0 + DAY, retiredAt: T0 + 2 * DAY });
  if (state === 'revoked') base.revokedAt = T0 + DAY;
  return { ...base, ...over };
}
