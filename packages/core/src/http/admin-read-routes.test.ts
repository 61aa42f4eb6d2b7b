import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { jsonlFileSink } from '../audit/jsonl-file-sink.js';
import { MasterKey } from '../keys/master-key.js';
import { createKeyward, type Keyward } from '../keyward.js';
import { type KeywardOptions, keywardOptionsFromEnv } from '../options.js';
import { createMemoryStore } from '../store/memory.js';
import { createAuthenticator } from './authenticate.js';
import { handleRoute, type KeywardRoute, keywardRoutes } from './routes.js';

const open: Keyward[] = [];
afterEach(async () => {
  for (const kw of open.splice(0)) await kw.close();
});
const dir = mkdtempSync(join(tmpdir(), 'keyward-admin-read-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function setup(extra: Partial<KeywardOptions> = {}) {
  const clock = { t: Date.parse('2026-01-01T00:00:00Z') };
  const kw = await createKeyward({
    store: createMemoryStore(),
    masterKey: MasterKey.generate().exportText(),
    logger: false,
    audit: { sinks: [] },
    scheduler: false,
    syncIntervalMs: 60_000,
    instanceHeartbeatMs: 60_000,
    now: () => clock.t,
    ...extra,
  });
  open.push(kw);
  const routes = keywardRoutes({ ...kw, metrics: { text: async () => '', contentType: 'text/plain' } });
  const auth = createAuthenticator(kw);
  const route = (name: string) => {
    const found = routes.find((r) => r.name === name);
    if (!found) throw new Error(`no route ${name}`);
    return found as KeywardRoute;
  };
  const { access_token: adminToken } = await kw.tokens.issue({ sub: 'ops', scopes: ['admin'] });
  const { access_token: readToken } = await kw.tokens.issue({ sub: 'alice', scopes: ['read'] });
  const call = (name: string, query: Record<string, string | string[]> = {}, token = adminToken) =>
    handleRoute(route(name), auth, {
      headers: { authorization: `Bearer ${token}` },
      params: {},
      query,
      body: undefined,
    });
  return { kw, call, readToken, clock, route };
}

describe('GET /admin/audit', () => {
  it('answers the latest events newest first, filtered by type, with the in-memory chain state', async () => {
    const { kw, call } = await setup();
    await kw.keys.rotate({ use: 'sig', reason: 'test' });
    await kw.keys.rotate({ use: 'enc', reason: 'test' });
    const all = await call('listAudit');
    expect(all.status).toBe(200);
    const body = all.body as {
      events: Array<{ type: string; time: string; hash: string; prevHash: string }>;
      chain: { ok: boolean; source: string; count?: number };
    };
    expect(body.events.length).toBeGreaterThan(2);
    // Newest first: each event's prevHash is the hash of the one listed after it.
    for (let i = 0; i + 1 < body.events.length; i++)
      expect(body.events[i]?.prevHash).toBe(body.events[i + 1]?.hash);
    expect(body.events[0]?.hash).toBe(kw.audit.lastHash);
    expect(body.chain).toMatchObject({ ok: true, source: 'memory', count: body.events.length });
    const rotations = body.events.filter((e) => e.type === 'key.rotated');
    expect(rotations).toHaveLength(2);
    const latest = (await call('listAudit', { type: 'key.rotated', limit: '1' })).body as typeof body;
    expect(latest.events.map((e) => e.type)).toEqual(['key.rotated']);
    expect(latest.events[0]?.hash).toBe(rotations[0]?.hash);
  });

  it('reports the stored chain of a jsonl file, and its first broken link once the file is edited', async () => {
    const file = join(dir, 'audit.jsonl');
    const { kw, call } = await setup({ audit: { sinks: [jsonlFileSink(file)] } });
    await kw.keys.rotate({ use: 'sig', reason: 'test' });
    const intact = (await call('listAudit')).body as { chain: Record<string, unknown>; events: unknown[] };
    expect(intact.chain).toMatchObject({ ok: true, source: 'sink', sink: 'jsonl' });
    expect(intact.chain.count).toBe(readFileSync(file, 'utf8').trim().split('\n').length);
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    const second = JSON.parse(lines[1] as string) as Record<string, unknown>;
    lines[1] = JSON.stringify({ ...second, kid: 'edited' });
    writeFileSync(file, `${lines.join('\n')}\n`);
    const broken = (await call('listAudit')).body as { chain: Record<string, unknown> };
    expect(broken.chain).toMatchObject({ ok: false, index: 1, eventId: second.id, source: 'sink' });
  });

  it('KEYWARD_AUDIT_FILE adds a jsonl file sink whose chain the route verifies', async () => {
    const file = join(dir, 'env-audit.jsonl');
    const { audit } = keywardOptionsFromEnv({ KEYWARD_AUDIT_FILE: file, KEYWARD_DIR: dir });
    const { kw, call } = await setup({ ...(audit ? { audit } : {}) });
    await kw.keys.rotate({ use: 'enc', reason: 'test' });
    const body = (await call('listAudit')).body as { chain: Record<string, unknown> };
    expect(body.chain).toMatchObject({ ok: true, source: 'sink', sink: 'jsonl' });
    expect(readFileSync(file, 'utf8')).toContain('"key.rotated"');
  });

  it('refuses an unknown type, a bad limit and a repeated parameter with 400; a non-admin with 403', async () => {
    const { call, readToken } = await setup();
    const bad: Array<Record<string, string | string[]>> = [
      { type: 'key.nope' },
      { limit: '0' },
      { limit: '1001' },
      { limit: '2x' },
      { type: ['a', 'b'] },
    ];
    for (const query of bad) {
      const answer = await call('listAudit', query);
      expect(answer.status, JSON.stringify(query)).toBe(400);
      expect(answer.body).toMatchObject({ error: 'invalid_request' });
    }
    expect((await call('listAudit', {}, readToken)).status).toBe(403);
  });
});

describe('GET /admin/keys/plan', () => {
  it("answers the scheduler's simulated steps over the horizon, times as ISO strings", async () => {
    const { call, kw } = await setup();
    const answer = await call('planKeys', { horizon: '120d' });
    expect(answer.status).toBe(200);
    const body = answer.body as {
      from: string;
      horizonDays: number;
      steps: Array<{ at: string; actions: Array<Record<string, unknown>>; jwksKids: string[] }>;
    };
    expect(body.from).toBe('2026-01-01T00:00:00.000Z');
    expect(body.horizonDays).toBe(120);
    const first = body.steps[0];
    expect(first?.jwksKids).toEqual(
      expect.arrayContaining(
        kw.keys
          .list()
          .filter((k) => k.use === 'sig' && k.state !== 'retired')
          .map((k) => k.kid),
      ),
    );
    const activations = body.steps.flatMap((s) => s.actions).filter((a) => a.type === 'activate');
    expect(activations.length).toBeGreaterThan(0);
    for (const step of body.steps) expect(Date.parse(step.at)).toBeGreaterThanOrEqual(Date.parse(body.from));
    const shorter = (await call('planKeys', { horizon: '1' })).body as typeof body;
    expect(shorter.horizonDays).toBe(1);
    expect(shorter.steps.length).toBeLessThan(body.steps.length);
    expect(((await call('planKeys')).body as typeof body).horizonDays).toBe(120);
  });

  it('refuses a horizon that is not a number of days up to 3650', async () => {
    const { call } = await setup();
    for (const horizon of ['-1d', '3651d', '12h', 'soon']) {
      expect((await call('planKeys', { horizon })).status, horizon).toBe(400);
    }
  });
});

describe('GET /admin/instances', () => {
  it("answers the registry: this instance with its generation, state and lag, and the store's generation", async () => {
    const { call, kw } = await setup();
    await kw.instances.beat();
    const answer = await call('listInstances');
    expect(answer.status).toBe(200);
    const body = answer.body as {
      generation: number;
      self: string;
      instances: Array<{ id: string; keyringGeneration: number; state: string; lastSeenAt: string }>;
    };
    expect(body.self).toBe(kw.instances.id);
    const me = body.instances.find((i) => i.id === kw.instances.id);
    expect(me).toMatchObject({ state: 'current', keyringGeneration: body.generation });
    expect(me?.lastSeenAt).toBe('2026-01-01T00:00:00.000Z');
  });
});
