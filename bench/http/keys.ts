/**
 * The key material of a run: one keyring per algorithm in a temp dir, opened by the orchestrator
 * to sign tokens and by every keyward server; the same key handed to the peers (the HS256 legacy
 * secret, or the public key of keyward's ES256 signing key).
 */
import { createPublicKey, type JsonWebKey, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKeyward, Fernet, type Keyward } from '@keyward/core';
import { type Alg, type KeyringSpec, keywardOptions, type PeerKey } from './spec.js';

export interface BenchKeyring {
  alg: Alg;
  keyring: KeyringSpec;
  peer: PeerKey;
  /** `count` fresh access tokens (distinct `jti`), valid for keyward's default 15 minutes. */
  sign(count: number): string[];
  close(): Promise<void>;
}

export async function openKeyring(alg: Alg): Promise<BenchKeyring> {
  const dir = mkdtempSync(join(tmpdir(), `keyward-bench-${alg.toLowerCase()}-`));
  const keyring: KeyringSpec = {
    dir,
    masterKey: Fernet.generateKey(),
    ...(alg === 'HS256' ? { jwtSecret: randomBytes(32).toString('base64url') } : { signingAlg: 'ES256' }),
  };
  // Only signs: no rotation, and a slow poll so this process stays quiet on the load generator's core.
  const kw: Keyward = await createKeyward(
    keywardOptions(keyring, { scheduler: false, syncIntervalMs: 60_000 }),
  );
  const sign = (count: number) =>
    Array.from({ length: count }, (_, i) => kw.jwt.sign({ sub: `user_${i}`, scope: 'read' }));
  const [probe] = sign(1);
  const header = JSON.parse(Buffer.from(probe?.split('.')[0] ?? '', 'base64url').toString()) as {
    alg: string;
    kid: string;
  };
  if (header.alg !== alg) throw new Error(`keyward signed with ${header.alg}, expected ${alg}`);
  let peer: PeerKey;
  if (alg === 'HS256') peer = { secret: keyring.jwtSecret ?? '' };
  else {
    const jwk = kw.keys.jwks().keys.find((k) => k.kid === header.kid);
    if (jwk === undefined) throw new Error('the signing key is not in the JWKS');
    const publicPem = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' })
      .export({ type: 'spki', format: 'pem' })
      .toString();
    peer = { publicJwk: jwk as JsonWebKey, publicPem };
  }
  return {
    alg,
    keyring,
    peer,
    sign,
    async close() {
      await kw.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
