import type { AddressInfo } from 'node:net';
import type { Principal } from '@keyward/core/http';
import express, { type NextFunction, type Request, type Response } from 'express';
import { describe, expect, it } from 'vitest';
import {
  AUTH_OPTIONS_REALM,
  AUTH_OPTIONS_TOKEN_HEADER,
  AUTH_OPTIONS_USERS,
  authOptionsHook,
  describeAuthOptionsContract,
} from '../../testing/src/adapter-contract-auth-options.js';
import { codeOf } from '../../testing/src/errors.js';
import { keyward } from './keyward.js';

const userOf = (req: Request) => (req as unknown as { user?: Principal }).user;

describeAuthOptionsContract(
  'Express (requestProperty, getToken, onAuthenticated, realm)',
  async (kw, mode) => {
    const seen = new Set<unknown>();
    const auth = keyward(kw, {
      realm: AUTH_OPTIONS_REALM,
      requestProperty: 'user',
      onAuthenticated: (principal, req) => {
        // The framework's own request, with its own API.
        if (typeof req.get !== 'function') throw new Error('not an Express request');
        seen.add(req);
        return authOptionsHook(principal);
      },
      ...(mode === 'extractor' ? { getToken: (req: Request) => req.get(AUTH_OPTIONS_TOKEN_HEADER) } : {}),
    });
    const app = express();
    app.use(auth.router({ users: AUTH_OPTIONS_USERS }));
    app.get('/whoami', auth.authenticate(), (req, res) => {
      const p = userOf(req);
      // The default property stays empty when another name is configured.
      if (req.auth !== undefined || res.locals.user !== p) throw new Error('wrong property');
      res.json({ sub: p?.sub, roles: p?.roles, tenant: p?.claims.tenant ?? null });
    });
    app.get('/maybe', auth.optional(), (req, res) => void res.json({ sub: userOf(req)?.sub ?? null }));
    app.get('/admin-only', auth.requireScopes('admin'), (_req, res) => void res.json({ ok: true }));
    app.use(auth.errorHandler());
    app.use((_err: unknown, _req: Request, res: Response, _next: NextFunction) => {
      res.status(500).json({ error: 'internal_error' });
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      close: () => void server.close(),
    };
  },
);

describe('Express options', () => {
  it('refuses an empty requestProperty', () => {
    const kw = { jwt: { verify: () => undefined } } as never;
    expect(codeOf(() => keyward(kw, { requestProperty: '' }))).toBe('config_invalid');
  });
});
