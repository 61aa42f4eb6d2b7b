import { AUDIT_EVENT_TYPES } from '@keyward/core';
import { ROUTE_GROUPS } from '@keyward/core/http';
import { describe, expect, it } from 'vitest';
import { codeOf } from '../../testing/src/errors.js';
import { CONSOLE_CSP, consoleFromEnv, consoleRoutes } from '../src/index.js';
import { AUDIT_TYPES } from '../ui/types.js';

describe('@keyward/console', () => {
  it('offers the same audit event types as core, in the same order', () => {
    expect(AUDIT_TYPES).toEqual(AUDIT_EVENT_TYPES);
  });

  it('consoleFromEnv: off unless KEYWARD_CONSOLE is 1 or true; any other value refused', () => {
    expect(consoleFromEnv({})).toEqual({});
    expect(consoleFromEnv({ KEYWARD_CONSOLE: '0' })).toEqual({});
    expect(consoleFromEnv({ KEYWARD_CONSOLE: 'false' })).toEqual({});
    const on = consoleFromEnv({ KEYWARD_CONSOLE: '1' });
    expect(on.include).toEqual([...ROUTE_GROUPS, 'console']);
    expect(on.routeSets?.map((s) => s.group)).toEqual(['console']);
    expect(consoleFromEnv({ KEYWARD_CONSOLE: 'TRUE' }).include).toContain('console');
    expect(codeOf(() => consoleFromEnv({ KEYWARD_CONSOLE: 'yes' }))).toBe('config_invalid');
  });

  it('builds its page for a basePath, and refuses a basePath that is not a clean path', async () => {
    const routes = consoleRoutes({ basePath: '/auth-api' }).routes({} as never, {});
    expect(routes.map((r) => [r.method, r.path, r.auth])).toEqual([
      ['GET', '/admin/console', 'none'],
      ['GET', '/admin/console/app.js', 'none'],
      ['GET', '/admin/console/app.css', 'none'],
    ]);
    const page = await routes[0]?.handle({ headers: {}, params: {}, body: undefined }, undefined);
    expect(page?.body).toContain('src="/auth-api/admin/console/app.js"');
    expect(page?.body).toContain('<meta name="keyward-base" content="/auth-api">');
    expect(page?.headers['content-security-policy']).toBe(CONSOLE_CSP);
    for (const bad of ['auth', '/auth/', '/a"b', '/<x>'])
      expect(
        codeOf(() => consoleRoutes({ basePath: bad })),
        bad,
      ).toBe('config_invalid');
  });
});
