/**
 * What the orchestrator (run.ts) tells a server process (server.ts): the framework, the
 * authentication variant and the key material, passed as JSON in `KEYWARD_BENCH_SPEC`.
 */
import type { JsonWebKey } from 'node:crypto';
import type { KeywardServiceOptions } from '@keyward/core';

export const FRAMEWORKS = ['express', 'fastify', 'hono', 'nest-express', 'nest-fastify'] as const;
export type Framework = (typeof FRAMEWORKS)[number];

/**
 * `none`: no auth; `noop`: an async middleware / hook / guard that lets everything through (the
 * framework's floor for any auth middleware of that shape); `keyward`: the adapter as documented;
 * `keyward-nocache`: same, verify cache off; `peer`: the framework's usual JWT middleware.
 */
export type Variant = 'none' | 'noop' | 'keyward' | 'keyward-nocache' | 'peer';
export type Alg = 'HS256' | 'ES256';

/** The one route every variant serves, and its body. */
export const ROUTE = '/hello';
export const BODY = { hello: 'world' } as const;

/** The keyring every process of one algorithm shares (same SQLite dir, same master key). */
export interface KeyringSpec {
  dir: string;
  masterKey: string;
  /** HS256: the legacy shared secret, signing (`legacySigning: true`), so peers can share it. */
  jwtSecret?: string;
  /** ES256: generated keys. */
  signingAlg?: 'ES256';
}

/** The key a peer middleware verifies with: the HS256 secret, or the public key of keyward's signing key. */
export interface PeerKey {
  secret?: string;
  publicPem?: string;
  publicJwk?: JsonWebKey;
}

export interface ServerSpec {
  framework: Framework;
  variant: Variant;
  alg: Alg;
  keyring: KeyringSpec;
  peer: PeerKey;
}

/** The options a bench process opens the shared keyring with. */
export function keywardOptions(
  keyring: KeyringSpec,
  extra: KeywardServiceOptions = {},
): KeywardServiceOptions {
  return {
    dir: keyring.dir,
    masterKey: keyring.masterKey,
    ...(keyring.jwtSecret ? { jwtSecret: keyring.jwtSecret, legacySigning: true } : {}),
    ...(keyring.signingAlg ? { signingAlg: keyring.signingAlg } : {}),
    logger: false,
    audit: false,
    ...extra,
  };
}

/** The `Authorization` value a peer guard would split; shared by the hand-written Nest guard. */
export function bearerToken(header: string | undefined): string | undefined {
  const [type, token] = header?.split(' ') ?? [];
  return type === 'Bearer' && token ? token : undefined;
}
