/**
 * Authenticator micro-benchmark: keyward's own bearer tokens through `createAuthenticator`, with and
 * without `trustedIssuers`. External issuers must not slow keyward's own path: its tokens are
 * verified synchronously as before and never reach the issuer verifier.
 *
 *   cd bench && npx tsx --conditions=@keyward/source micro/authenticate.ts [--quick]
 *
 * Interleaved rounds of both variants on one instance each, so drift affects both alike. The
 * trusted issuer is never contacted (its URL does not resolve): a fetch would show as errors.
 */
import { performance } from 'node:perf_hooks';
import { createKeyward, createMemoryStore, MasterKey } from '@keyward/core';
import { createAuthenticator } from '@keyward/core/http';

const QUICK = process.argv.includes('--quick');
const DURATION_MS = QUICK ? 100 : 250;
const ROUNDS = QUICK ? 2 : 6;
const DISTINCT = 1000;

async function variant(trusted: boolean) {
  const kw = await createKeyward({
    store: createMemoryStore(),
    masterKey: MasterKey.generate().exportText(),
    logger: false,
    audit: false,
    scheduler: false,
    syncIntervalMs: 60_000,
    ...(trusted
      ? { trustedIssuers: [{ issuer: 'https://idp.invalid/realms/x', discovery: true, audience: 'api' }] }
      : {}),
  });
  const auth = createAuthenticator(kw);
  const headers = await Promise.all(
    Array.from({ length: DISTINCT }, async (_, i) => {
      const { access_token } = await kw.tokens.issue({ sub: `user_${i}`, scopes: ['read'] });
      return { authorization: `Bearer ${access_token}` };
    }),
  );
  for (const h of headers) await auth.authenticate(h); // warm the verified-token cache
  return { kw, auth, headers };
}

async function round(v: Awaited<ReturnType<typeof variant>>): Promise<number> {
  let ops = 0;
  const started = performance.now();
  while (performance.now() - started < DURATION_MS) {
    for (let i = 0; i < 100; i++)
      await v.auth.authenticate(v.headers[(ops + i) % DISTINCT] as { authorization: string });
    ops += 100;
  }
  return (ops / (performance.now() - started)) * 1000;
}

const plain = await variant(false);
const withIssuers = await variant(true);
const results = { plain: [] as number[], trustedIssuers: [] as number[] };
for (let r = 0; r < ROUNDS; r++) {
  results.plain.push(await round(plain));
  results.trustedIssuers.push(await round(withIssuers));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
for (const [name, xs] of Object.entries(results)) {
  console.log(
    `${name.padEnd(16)} ${Math.round(median(xs)).toLocaleString('en')} authenticate/s (median of ${xs.length})`,
  );
}
console.log(
  `trustedIssuers / plain: ${((median(results.trustedIssuers) / median(results.plain)) * 100).toFixed(1)} %`,
);
await plain.kw.close();
await withIssuers.kw.close();
