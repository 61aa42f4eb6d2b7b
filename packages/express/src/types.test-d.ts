import type { Principal } from '@keyward/core/http';
import express, { type ErrorRequestHandler, type RequestHandler, type Router } from 'express';
import { expectTypeOf } from 'vitest';
import type { KeywardExpress, UnauthorizedError } from './index.js';

declare const auth: KeywardExpress;

const app = express();
app.get('/orders', auth.requireScopes('orders:read'), (req, res) => {
  expectTypeOf(req.auth).toEqualTypeOf<Principal | undefined>();
  expectTypeOf(res.locals.auth).toEqualTypeOf<Principal | undefined>();
  expectTypeOf(req.auth?.via).toEqualTypeOf<'jwt' | 'api_key' | undefined>();
  res.json({ sub: req.auth?.sub });
});
app.use(auth.router());
app.use(auth.errorHandler());

expectTypeOf(auth.authenticate()).toEqualTypeOf<RequestHandler>();
expectTypeOf(auth.router()).toEqualTypeOf<Router>();
expectTypeOf(auth.errorHandler()).toEqualTypeOf<ErrorRequestHandler>();
expectTypeOf<UnauthorizedError>().toHaveProperty('code').toEqualTypeOf<string>();
expectTypeOf<UnauthorizedError>().toHaveProperty('status').toEqualTypeOf<number>();
