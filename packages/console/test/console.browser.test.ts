// The console in a real Chromium (Debian's `chromium`, driven by playwright-core) against the
// Express example as a real process: sign-in, refusal of a non-admin, every kid, a rotation and a
// revocation through the dialogs, the timeline and the audit updating, instances and health. Any
// console error, page error or CSP violation fails the test; a screenshot of each view goes to
// $KEYWARD_ARTIFACTS_DIR/console/ (else test-output/console/).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningApp, startExampleProcess } from '../../testing/src/adapter-contract.js';
import { chromium as chromiumPath, hasTool } from '../../testing/src/tools.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const artifacts = join(
  process.env.KEYWARD_ARTIFACTS_DIR ? process.env.KEYWARD_ARTIFACTS_DIR : join(repo, 'test-output'),
  'console',
);
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

interface KeyRow {
  kid: string;
  use: string;
  state: string;
}

describe.runIf(hasTool('chromium'))('operator console in Chromium', () => {
  let app: RunningApp;
  let auditFile: string;
  let context: BrowserContext;
  let page: Page;
  const dirs: string[] = [];
  /** Every console error, page error and CSP violation the browser reported. */
  const problems: string[] = [];
  /** Every access and refresh token the server handed to the page. */
  const tokens: string[] = [];

  const api = async (method: string, path: string, token: string, body?: unknown) => {
    const res = await fetch(`${app.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    expect(res.status, `${method} ${path}`).toBeLessThan(300);
    return res.json();
  };
  const login = async (username: string, password: string): Promise<string> => {
    const res = await fetch(`${app.url}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password }),
    });
    return ((await res.json()) as { access_token: string }).access_token;
  };
  const keys = async () =>
    (await api('GET', '/admin/keys', await login('admin', 'admin-password'))) as KeyRow[];
  const shot = (name: string) => page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
  /** The page's DOM and visible text carry no token and no private or secret JWK member. */
  const expectNoSecrets = async () => {
    expect(tokens.length).toBeGreaterThan(0);
    const html = await page.content();
    const text = (await page.locator('body').textContent()) ?? '';
    for (const token of tokens) {
      expect(html.includes(token)).toBe(false);
      expect(text.includes(token)).toBe(false);
    }
    expect(html).not.toMatch(/"(k|d|p|q|dp|dq|qi)"\s*:/);
    const stored = await page.evaluate(
      '[document.cookie, JSON.stringify(localStorage), JSON.stringify(sessionStorage)]',
    );
    expect(stored).toEqual(['', '{}', '{}']);
  };
  const signIn = async (username: string, password: string) => {
    await page.getByRole('tab', { name: 'Password' }).click();
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
  };

  beforeAll(async () => {
    mkdirSync(artifacts, { recursive: true });
    const dir = mkdtempSync(join(tmpdir(), 'keyward-console-'));
    const profile = mkdtempSync(join(tmpdir(), 'keyward-chromium-'));
    dirs.push(dir, profile);
    auditFile = join(dir, 'audit.jsonl');
    app = await startExampleProcess(join(repo, 'examples/express'), {
      PORT: '0',
      KEYWARD_DIR: dir,
      KEYWARD_CONSOLE: '1',
      KEYWARD_AUDIT_FILE: auditFile,
      LOG_LEVEL: 'warn',
      DEMO_USERS: 'alice:alice-password:read,admin:admin-password:read admin',
    });
    context = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 900 },
    });
    // A CSP violation is reported as a console error too; this makes sure it names the directive.
    await context.addInitScript(
      "document.addEventListener('securitypolicyviolation', (e) => console.error('CSP violation: ' + e.violatedDirective))",
    );
    page = context.pages()[0] ?? (await context.newPage());
    // Below the test timeout, so a missing element fails with the locator it waited for.
    page.setDefaultTimeout(10_000);
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('response', async (res) => {
      if (!/\/auth\/(login|refresh)$/.test(res.url()) || res.status() !== 200) return;
      const pair = (await res.json()) as { access_token: string; refresh_token: string };
      tokens.push(pair.access_token, pair.refresh_token);
    });
  }, 120_000);

  afterAll(async () => {
    await context?.close();
    await app?.stop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('serves the page with its CSP and without framing', async () => {
    const res = await page.goto(`${app.url}/admin/console`);
    expect(res?.status()).toBe(200);
    const headers = res?.headers() ?? {};
    expect(headers['content-security-policy']).toContain("script-src 'self'");
    expect(headers['x-frame-options']).toBe('DENY');
    await expect.poll(() => page.getByRole('button', { name: 'Sign in' }).count()).toBe(1);
    await shot('sign-in');
  });

  it('refuses a non-admin after sign-in and shows nothing of the admin views', async () => {
    await signIn('alice', 'alice-password');
    await page.getByText('This account is not an administrator').waitFor();
    expect(await page.getByRole('heading', { name: 'Keys' }).count()).toBe(0);
    await shot('refused');
    await expectNoSecrets();
  });

  it('signs in the admin and lists every kid of /admin/keys, with the rotation timeline', async () => {
    await signIn('admin', 'admin-password');
    await page.getByRole('heading', { name: 'Keys' }).waitFor();
    const timeline = page.getByRole('img', { name: 'Rotation timeline' });
    await timeline.waitFor();
    const all = await keys();
    expect(all.map((k) => k.use).sort()).toEqual(expect.arrayContaining(['data', 'enc', 'sig']));
    for (const key of all) {
      await expect.poll(() => page.getByRole('cell', { name: key.kid, exact: true }).count()).toBe(1);
      if (['pending', 'active', 'retiring'].includes(key.state))
        expect(await timeline.locator(`[data-kid="${key.kid}"]`).count()).toBe(1);
    }
    // The planner's next rotations are drawn (markers) and planned keys have rows.
    expect(await timeline.locator('.rotation').count()).toBeGreaterThan(0);
    expect(await timeline.locator('.row.planned').count()).toBeGreaterThan(0);
    await shot('keys');
    await expectNoSecrets();
  });

  it('rotates the signing key through the dialog; the table and the timeline follow', async () => {
    const before = await keys();
    const oldActive = before.find((k) => k.use === 'sig' && k.state === 'active')?.kid as string;
    await page.getByRole('button', { name: 'Rotate sig' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    await shot('rotate-dialog');
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    await page.getByText(/^Rotated sig: /).waitFor();
    const after = await keys();
    const newActive = after.find((k) => k.use === 'sig' && k.state === 'active')?.kid as string;
    expect(newActive).not.toBe(oldActive);
    expect(after.find((k) => k.kid === oldActive)?.state).toBe('retiring');
    const row = (kid: string) =>
      page.getByRole('row').filter({ has: page.getByRole('cell', { name: kid, exact: true }) });
    await expect.poll(() => row(newActive).getByText('active', { exact: true }).count()).toBe(1);
    await expect.poll(() => row(oldActive).getByText('retiring', { exact: true }).count()).toBe(1);
    // Every new key of the rotation (the new standby too) is in the table and the timeline.
    const timeline = page.getByRole('img', { name: 'Rotation timeline' });
    for (const key of after.filter((k) => !before.some((b) => b.kid === k.kid))) {
      await expect.poll(() => row(key.kid).count()).toBe(1);
      await expect.poll(() => timeline.locator(`[data-kid="${key.kid}"]`).count()).toBe(1);
    }
  });

  it('revokes a key through the dialog, which needs a reason', async () => {
    const target = (await keys()).find((k) => k.use === 'sig' && k.state === 'retiring')?.kid as string;
    await page.getByRole('button', { name: `Revoke ${target}` }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    await dialog.getByText('A revocation needs a reason.').waitFor();
    await dialog.getByLabel('Reason').fill('console browser test');
    await shot('revoke-dialog');
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    await page.getByText(`Revoked ${target}`).waitFor();
    expect((await keys()).find((k) => k.kid === target)?.state).toBe('revoked');
    const row = page.getByRole('row').filter({ has: page.getByRole('cell', { name: target, exact: true }) });
    await expect.poll(() => row.getByText('revoked', { exact: true }).count()).toBe(1);
    expect(await row.getByRole('button', { name: /Revoke/ }).count()).toBe(0);
    // A revoked key leaves the timeline.
    const timeline = page.getByRole('img', { name: 'Rotation timeline' });
    await expect.poll(() => timeline.locator(`[data-kid="${target}"]`).count()).toBe(0);
    await shot('keys-after-actions');
  });

  it('shows the audit newest first with the rotation and the revocation, filterable by type, chain verified', async () => {
    await page.getByRole('button', { name: 'Audit' }).click();
    await page.getByRole('heading', { name: 'Audit' }).waitFor();
    await page.getByText(/^chain verified \(\d+ events, stored in jsonl\)/).waitFor();
    const types = async () => page.locator('table.audit tbody tr td:nth-child(2)').allInnerTexts();
    await expect
      .poll(async () => (await types()).slice(0, 10))
      .toEqual(expect.arrayContaining(['key.revoked', 'key.rotated']));
    const listed = await types();
    // Newest first: the revocation came after the rotation.
    expect(listed.indexOf('key.revoked')).toBeLessThan(listed.indexOf('key.rotated'));
    expect(await page.locator('table.audit').textContent()).toContain('console browser test');
    await shot('audit');
    await page.getByLabel('Type').selectOption('key.revoked');
    await expect.poll(async () => [...new Set(await types())]).toEqual(['key.revoked']);
    await expectNoSecrets();
  });

  it('shows the instances with their generation and the readiness checks', async () => {
    await page.getByRole('button', { name: 'Instances and health' }).click();
    await page.getByRole('heading', { name: 'Instances and health' }).waitFor();
    await page.getByText('(this one)').waitFor();
    const instance = page.locator('table.instances tbody tr').first();
    expect(await instance.locator('td').nth(2).textContent()).toMatch(/^\s*\d+\s*$/);
    await page.locator('table.health').getByText('keys:age').first().waitFor();
    await page.getByRole('heading', { name: 'Data-key rewrap' }).waitFor();
    await shot('instances-health');
    await expectNoSecrets();
  });

  it('signs in with an API key of the admin', async () => {
    const token = await login('admin', 'admin-password');
    const created = (await api('POST', '/api-keys', token, { name: 'console-test', scopes: ['admin'] })) as {
      key: string;
    };
    tokens.push(created.key);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('tab', { name: 'API key' }).click();
    await page.getByLabel('API key').fill(created.key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Keys' }).waitFor();
    await page.getByText('(API key)').waitFor();
    await expectNoSecrets();
  });

  it('shows the first broken link once the audit file is edited', async () => {
    const lines = readFileSync(auditFile, 'utf8').trimEnd().split('\n');
    const third = JSON.parse(lines[2] as string) as Record<string, unknown>;
    lines[2] = JSON.stringify({ ...third, outcome: 'failure' });
    writeFileSync(auditFile, `${lines.join('\n')}\n`);
    await page.getByRole('button', { name: 'Audit' }).click();
    await page.getByText(`chain broken at line 3 of the jsonl sink (${third.id})`).waitFor();
    await shot('audit-broken');
  });

  it('reported no console error, page error or CSP violation', () => {
    expect(problems).toEqual([]);
  });

  it('enforces its CSP: an inline style is blocked, and the check above would have seen it', async () => {
    const before = problems.length;
    await page.evaluate("document.body.insertAdjacentHTML('beforeend', '<p style=\\'color: red\\'>x</p>')");
    await expect
      .poll(() => problems.slice(before).some((p) => p.includes('CSP violation: style-src')))
      .toBe(true);
  });
});
