/**
 * What the orchestrator (run.ts) tells a server process (server.ts): the framework, the
 * authentication variant and the key material, passed as JSON in `KEYWARD_BENCH_SPEC`.
 */
import {
  createHmac,
  createPublicKey,
  verify as cryptoVerify,
  type JsonWebKey,
  timingSafeEqual,
} from 'node:crypto';
import type { KeywardServiceOptions } from '@keyward/core';

export const FRAMEWORKS = ['express', 'fastify', 'hono', 'nest-express', 'nest-fastify'] as const;
export type Framework = (typeof FRAMEWORKS)[number];

/**
 * `none`: no auth; `noop`: an async middleware / hook / guard that lets everything through (the
 * framework's floor for any auth middleware of that shape); `keyward`: the adapter as documented;
 * `keyward-nocache`: same, verify cache off; `peer`: the framework's usual JWT middleware; `raw`:
 * the no-op guard plus the bare signature check of the token (see {@link rawVerifier}), the
 * ceiling of any verifier that checks every request.
 */
export type Variant = 'none' | 'noop' | 'keyward' | 'keyward-nocache' | 'peer' | 'raw';
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

/** A positive number from the environment variable `name`, else `fallback`; anything else throws. */
export function envNumber(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number`);
  return value;
}

/**
 * What the floor guard checks per request: nothing for `noop`, the bare signature for `raw`. Every
 * framework has one floor guard (a no-op of keyward's shape) that calls this when it is defined.
 */
export function floorCheck(spec: ServerSpec): ((authorization: string | undefined) => void) | undefined {
  return spec.variant === 'raw' ? rawVerifier(spec.peer) : undefined;
}

/**
 * What the `raw` guard does per request: split the bearer token at its last dot, decode the
 * signature, and check it: `crypto.verify` with the ES256 public key, or an HMAC-SHA256 with the
 * HS256 secret compared by `timingSafeEqual`. No header or payload parsing, no claims: only the
 * signature check every verifier of distinct tokens has to pay. Throws on a bad token.
 */
export function rawVerifier(peer: PeerKey): (authorization: string | undefined) => void {
  const secret = peer.secret;
  const key = secret === undefined ? createPublicKey(peer.publicPem ?? '') : undefined;
  return (authorization) => {
    const token = bearerToken(authorization) ?? '';
    const dot = token.lastIndexOf('.');
    const input = Buffer.from(token.slice(0, dot), 'latin1');
    const signature = Buffer.from(token.slice(dot + 1), 'base64url');
    const ok =
      key !== undefined
        ? cryptoVerify('sha256', input, { key, dsaEncoding: 'ieee-p1363' }, signature)
        : signature.length === 32 &&
          timingSafeEqual(
            createHmac('sha256', secret ?? '')
              .update(input)
              .digest(),
            signature,
          );
    if (!ok) throw new Error('raw verify rejected the token');
  };
}
