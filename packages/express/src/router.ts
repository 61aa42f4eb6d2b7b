import type { Authenticator, DeniedHook, KeywardRoute, RouteDeps } from '@keyward/core/http';
import {
  handleRoute,
  invalidBody,
  keywardRoutes,
  problemResponse,
  routeTableOptions,
} from '@keyward/core/http';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { keywardErrorOf, send } from './errors.js';
import type { KeywardRouterOptions } from './keyward.js';

const JSON_TYPE = 'application/json';
const FORM_TYPE = 'application/x-www-form-urlencoded';

/** Builds an Express router from core's route table: one Express route per contract route. */
export function keywardRouter(
  kw: RouteDeps,
  auth: Authenticator,
  options: KeywardRouterOptions,
  onDenied: DeniedHook | undefined,
): Router {
  const { bodyLimit = '100kb' } = options;
  const router = express.Router();
  // body-parser reads an empty body as `{}`; a bodyless request must reach the route as no body.
  const emptyBodies = new WeakSet<object>();
  const verify = (req: object, _res: unknown, buf: Buffer) => {
    if (buf.length === 0) emptyBodies.add(req);
  };
  const parseJson = express.json({ limit: bodyLimit, type: JSON_TYPE, verify });
  // The OAuth endpoints (RFC 7662 / RFC 7009) take form bodies only: flat fields, no `qs` nesting.
  const parseForm = express.urlencoded({ extended: false, limit: bodyLimit, type: FORM_TYPE, verify });
  // Parser errors of these routes only: the user's own routes keep their own error handling.
  const onParseError = (err: unknown, _req: Request, res: Response, next: NextFunction) => {
    const keywardError = keywardErrorOf(err);
    if (keywardError === undefined) return next(err);
    send(res, problemResponse(keywardError, onDenied));
  };
  const handler = (route: KeywardRoute) => (req: Request, res: Response, next: NextFunction) => {
    const format = route.body ?? 'json';
    // req.is() is null without a body, false for a body of another type (which the parser skipped);
    // `Content-Length: 0` is no body either.
    const request =
      req.is(format === 'form' ? FORM_TYPE : JSON_TYPE) === false && req.headers['content-length'] !== '0'
        ? Promise.resolve(problemResponse(invalidBody('unsupported_type', format), onDenied))
        : // The contract's paths have only named `:params` (strings), no wildcards (string[]).
          handleRoute(
            route,
            auth,
            {
              headers: req.headers,
              params: req.params as Record<string, string>,
              // Express 5's default query parser: a string, or an array when repeated.
              query: req.query as Record<string, string | string[] | undefined>,
              body: emptyBodies.has(req) ? undefined : req.body,
              remoteAddress: req.ip,
              native: req,
            },
            onDenied,
          );
    request.then((answer) => send(res, answer), next);
  };
  for (const route of keywardRoutes(kw, routeTableOptions(options))) {
    const method = route.method.toLowerCase() as 'get' | 'post' | 'put' | 'delete';
    if (route.method === 'POST' || route.method === 'PUT') {
      router[method](route.path, route.body === 'form' ? parseForm : parseJson, onParseError, handler(route));
    } else {
      router[method](route.path, handler(route));
    }
  }
  return router;
}
