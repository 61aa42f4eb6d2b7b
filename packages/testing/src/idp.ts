import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';

/** How the test IdP answers its JWKS and discovery requests. */
export type TestIdpMode = 'ok' | 'down' | 'garbage' | 'huge';

/** One signing key of the {@link TestIdp}. */
export interface TestIdpKey {
  kid: string;
  alg: string;
  jwk: JWK;
  /** Signs an access token: `iss` = the IdP, `aud` = `audience`, 5 minutes, plus `claims`. */
  sign(
    claims?: Record<string, unknown>,
    options?: { iss?: string; aud?: string; typ?: string },
  ): Promise<string>;
}

/** A local OpenID provider on loopback: discovery and JWKS over `node:http`, jose keys. */
export interface TestIdp {
  /** `iss` of its tokens: `http://127.0.0.1:<port>/realms/test`. */
  readonly issuer: string;
  /** Its JWKS endpoint. */
  readonly jwksUri: string;
  /** The audience its tokens carry by default. */
  readonly audience: string;
  /** Generates a key (published unless `publish: false`). */
  addKey(options?: {
    kid?: string;
    alg?: 'ES256' | 'RS256' | 'EdDSA';
    publish?: boolean;
  }): Promise<TestIdpKey>;
  /** Replaces the published keys. */
  publish(keys: TestIdpKey[]): void;
  /** `ok`; `down` (503); `garbage` (200, not JSON); `huge` (an endless JWKS body, streamed). */
  setMode(mode: TestIdpMode): void;
  /** Requests served, by endpoint. */
  readonly counts: { jwks: number; discovery: number };
  /** Bytes of the last `huge` response written before the client hung up, and whether it did. */
  readonly huge: { written: number; closedByClient: boolean };
  close(): Promise<void>;
}

const HUGE_LIMIT = 256 * 1024 * 1024;

/**
 * Starts a {@link TestIdp} on `127.0.0.1` (any free port).
 *
 * @example
 * ```ts
 * const idp = await startTestIdp()
 * const key = await idp.addKey()
 * const token = await key.sign({ sub: 'user_1', scope: 'read' })
 * ```
 */
export async function startTestIdp(
  options: { maxAgeSec?: number; audience?: string } = {},
): Promise<TestIdp> {
  const maxAge = options.maxAgeSec ?? 300;
  let published: TestIdpKey[] = [];
  let mode: TestIdpMode = 'ok';
  const counts = { jwks: 0, discovery: 0 };
  const huge = { written: 0, closedByClient: false };
  let base = '';
  const issuerPath = '/realms/test';

  function streamHuge(res: ServerResponse): void {
    huge.written = 0;
    huge.closedByClient = false;
    res.writeHead(200, { 'content-type': 'application/json' }); // chunked: no Content-Length
    res.on('close', () => {
      if (!res.writableFinished) huge.closedByClient = true;
    });
    const chunk = Buffer.from(`{"kty":"EC","crv":"P-256","x":"${'A'.repeat(16_000)}"},`);
    res.write('{"keys":[');
    const pump = () => {
      while (!res.destroyed && huge.written < HUGE_LIMIT) {
        huge.written += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
      if (!res.destroyed) res.end('{}]}');
    };
    pump();
  }

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const isDiscovery = path === `${issuerPath}/.well-known/openid-configuration`;
    const isJwks = path === `${issuerPath}/certs`;
    if (!isDiscovery && !isJwks) {
      res.writeHead(404).end();
      return;
    }
    if (isDiscovery) counts.discovery += 1;
    else counts.jwks += 1;
    if (mode === 'down') {
      res.writeHead(503).end();
      return;
    }
    if (mode === 'garbage') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('<html>oops</html>');
      return;
    }
    if (isDiscovery) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ issuer: base + issuerPath, jwks_uri: `${base}${issuerPath}/certs` }));
      return;
    }
    if (mode === 'huge') {
      streamHuge(res);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': `public, max-age=${maxAge}` });
    res.end(JSON.stringify({ keys: published.map((k) => k.jwk) }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const issuer = base + issuerPath;
  const audience = options.audience ?? 'api';
  let next = 0;

  return {
    issuer,
    jwksUri: `${issuer}/certs`,
    audience,
    counts,
    huge,
    async addKey(keyOptions = {}) {
      const alg = keyOptions.alg ?? 'ES256';
      const kid = keyOptions.kid ?? `idp-key-${++next}`;
      const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
      const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
      const key: TestIdpKey = {
        kid,
        alg,
        jwk,
        sign(claims = {}, signOptions = {}) {
          const now = Math.floor(Date.now() / 1000);
          return new SignJWT({ sub: 'idp-user', ...claims })
            .setProtectedHeader({ alg, kid, typ: signOptions.typ ?? 'at+jwt' })
            .setIssuer(signOptions.iss ?? issuer)
            .setAudience(signOptions.aud ?? audience)
            .setIssuedAt(now)
            .setExpirationTime(now + 300)
            .sign(privateKey);
        },
      };
      if (keyOptions.publish !== false) published = [...published, key];
      return key;
    },
    publish(keys) {
      published = [...keys];
    },
    setMode(next) {
      mode = next;
    },
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
