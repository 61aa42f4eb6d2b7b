import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { expect, it } from 'vitest';
import { createAuthenticator, handleRoute, keywardRoutes, staticUsers } from '../src/http/index.js';
import {
  createAuditLog,
  createIdpTokenStore,
  createKeyward,
  createMemoryStore,
  createRewrapJob,
  jsonField,
  jsonlFileSink,
  KeyringRepository,
  MasterKey,
  pinoSink,
  SECRETS_REWRAP_TARGET,
} from '../src/index.js';

/**
 * Issue 5: every event and log line of a full run, checked against every key, secret and token
 * value the run used. Tokens may appear only as fingerprints.
 */
it('no key, secret or token value reaches any audit event or log line', async () => {
  const lines: string[] = [];
  const capture = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  const logger = pino({ level: 'trace' }, capture);
  const dir = mkdtempSync(join(tmpdir(), 'kw-nosecrets-'));
  const auditFile = join(dir, 'audit.jsonl');
  const clock = { now: Date.now() };
  const now = () => clock.now;
  const masterKey = MasterKey.generate().exportText();
  const jwtSecret = `legacy-${randomBytes(12).toString('hex')}`;
  const store = createMemoryStore({ now });
  const audit = createAuditLog({ now, sinks: [pinoSink(logger), jsonlFileSink(auditFile)] });
  const kw = await createKeyward({
    store,
    masterKey,
    jwtSecret,
    logger,
    audit,
    now,
    scheduler: false,
    syncIntervalMs: 60_000,
  });

  const secrets: string[] = [masterKey.replace(/=+$/, ''), jwtSecret];
  const remember = (...values: string[]) => secrets.push(...values);

  // Sessions: issue, refresh, reuse detection, logout everywhere.
  const pair = await kw.tokens.issue({ sub: 'alice', scopes: ['read', 'admin'] });
  remember(pair.access_token, pair.refresh_token);
  const next = await kw.tokens.refresh(pair.refresh_token);
  remember(next.access_token, next.refresh_token);
  clock.now += 10_000;
  await expect(kw.tokens.refresh(pair.refresh_token)).rejects.toMatchObject({ code: 'refresh_token_reused' });
  const again = await kw.tokens.issue({ sub: 'alice', scopes: ['read', 'admin'] });
  remember(again.access_token, again.refresh_token);
  const oneTime = await kw.tokens.oneTime({ sub: 'alice', purpose: 'email' });
  remember(oneTime);
  await kw.tokens.consumeOneTime(oneTime, 'email');

  // API keys, secrets, IdP tokens.
  const apiKey = await kw.apiKeys.create({ owner: 'alice', name: 'ci', scopes: ['read'] });
  remember(apiKey.key, apiKey.key.slice(apiKey.key.lastIndexOf('_') + 1));
  await kw.apiKeys.verify(apiKey.key);
  await kw.apiKeys.revoke(apiKey.id);
  await expect(kw.apiKeys.verify(apiKey.key)).rejects.toMatchObject({ code: 'api_key_revoked' });
  const secretValue = `s3cr3t-${randomBytes(8).toString('hex')}`;
  remember(secretValue);
  await kw.secrets.put('alice', 'github', secretValue);
  expect(await kw.secrets.get('alice', 'github')).toBe(secretValue);
  const idpAccess = `idp-at-${randomBytes(8).toString('hex')}`;
  const idpRefresh = `idp-rt-${randomBytes(8).toString('hex')}`;
  const idpNext = `idp-at2-${randomBytes(8).toString('hex')}`;
  remember(idpAccess, idpRefresh, idpNext);
  const idp = createIdpTokenStore(kw, {
    refresh: async () => ({ accessToken: idpNext, expiresAt: clock.now + 3_600_000 }),
  });
  await idp.save({
    sub: 'alice',
    provider: 'github',
    accessToken: idpAccess,
    refreshToken: idpRefresh,
    expiresAt: clock.now + 1000,
  });
  expect(await idp.get('alice', 'github')).toBe(idpNext);

  // The HTTP layer with hostile requests (audited as access.denied).
  const auth = createAuthenticator(kw);
  const routes = keywardRoutes(kw, { users: staticUsers('bob:bob-password-123:read') });
  remember('bob-password-123');
  const me = routes.find((r) => r.name === 'me')!;
  const [h, p, s] = again.access_token.split('.') as [string, string, string];
  const tampered = `${h}.${Buffer.from('{"sub":"mallory","exp":9999999999}').toString('base64url')}.${s}`;
  remember(tampered);
  for (const authorization of [
    `Bearer ${tampered}`,
    `Bearer ${h}.${p}.AAAA`,
    'Bearer x.y.z',
    `Bearer ${pair.access_token}`,
  ]) {
    const res = await handleRoute(me, auth, { headers: { authorization }, params: {}, body: undefined });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(JSON.stringify(res)).not.toContain(tampered);
  }
  const login = routes.find((r) => r.name === 'login')!;
  await handleRoute(login, auth, {
    headers: {},
    params: {},
    body: { username: 'bob', password: 'wrong-password-456' },
  });
  remember('wrong-password-456');

  // Key lifecycle: rotations, an emergency revocation, a rewrap.
  await kw.keys.rotate({ use: 'sig', reason: 'test' });
  await kw.keys.rotate({ use: 'data' });
  const active = kw.keys.list().find((r) => r.use === 'sig' && r.state === 'active')!;
  await kw.keys.revoke(active.kid, 'drill');
  await createRewrapJob(kw, { ...SECRETS_REWRAP_TARGET, settleMs: 0 }).run();
  await createRewrapJob(kw, { ...jsonField('value'), prefixes: ['idp:'], settleMs: 0 }).run();
  await kw.tokens.logoutEverywhere('alice');

  const repo = new KeyringRepository(store, MasterKey.parse(masterKey));
  for (const { material } of repo.unseal((await repo.read())!)) {
    for (const value of [material.k, material.d, material.p, material.q]) if (value) remember(value);
  }
  await kw.close();

  const output = [...lines, readFileSync(auditFile, 'utf8')].join('\n');
  expect(output).toContain('token.reuse_detected');
  expect(output).toContain('access.denied');
  expect(output).toContain('key.revoked');
  expect(output).toContain('secret.rewrapped');
  for (const value of secrets) {
    expect(value.length).toBeGreaterThan(8);
    if (output.includes(value)) throw new Error(`a secret value of length ${value.length} reached the log`);
    // Signatures are as unique as the tokens they end.
    const signature = value.split('.')[2];
    if (signature && signature.length > 20 && output.includes(signature))
      throw new Error('a token signature reached the log');
  }
});
