import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { KeywardError } from '@keyward/core';
import {
  type HttpRequest,
  type HttpResponse,
  type KeywardRoute,
  ROUTE_GROUPS,
  type RouteGroup,
  type RouteSet,
} from '@keyward/core/http';

/** Options of {@link consoleRoutes}. */
export interface ConsoleRoutesOptions {
  /**
   * The path the keyward routes are mounted under, when not at the root (a Fastify `prefix`, an
   * Express `app.use('/auth-api', …)`): the page then loads its assets and calls the API there.
   * Default `''`. Must start with `/` and not end with one.
   */
  basePath?: string;
}

/** Where the console is served, under `basePath`. */
export const CONSOLE_PATH = '/admin/console';

/**
 * The Content-Security-Policy of every console answer: scripts, styles and API calls from the
 * same origin only, no inline script or style, no framing, no plugins, forms post nowhere.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CONSOLE_CSP,
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  // Revalidate on every load (cheap with the ETag): a new build is never served stale.
  'cache-control': 'no-cache',
};

interface Asset {
  body: string;
  type: string;
  etag: string;
}

function asset(body: string, type: string): Asset {
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
  return { body, type, etag };
}

function readBuilt(name: string): string {
  const url = new URL(`../dist/assets/${name}`, import.meta.url);
  try {
    return readFileSync(url, 'utf8');
  } catch (err) {
    throw new KeywardError(
      'config_invalid',
      `@keyward/console: the built asset ${name} is missing; build the package (pnpm build)`,
      { cause: err },
    );
  }
}

const escapeAttribute = (value: string) =>
  value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function page(base: string): string {
  const at = escapeAttribute(`${base}${CONSOLE_PATH}`);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="keyward-base" content="${escapeAttribute(base)}">
<title>keyward console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${at}/app.css">
<script type="module" src="${at}/app.js"></script>
</head>
<body>
<div id="app"></div>
<noscript>The keyward console needs JavaScript.</noscript>
</body>
</html>
`;
}

function serve(path: string, name: string, file: Asset): KeywardRoute {
  return {
    name,
    method: 'GET',
    path,
    auth: 'none',
    async handle(req: HttpRequest): Promise<HttpResponse> {
      const headers = { ...SECURITY_HEADERS, 'content-type': file.type, etag: file.etag };
      const inm = req.headers['if-none-match'];
      if (typeof inm === 'string' && inm.split(',').some((t) => t.trim() === file.etag))
        return { status: 304, headers };
      return { status: 200, headers, body: file.body };
    },
  };
}

/**
 * The operator console as a route set for `@keyward/core/http`: `GET /admin/console` (the page),
 * `/admin/console/app.js` and `/admin/console/app.css`, built into the package at build time and
 * read once when the route table is built (no network at run time). The page is public static
 * content; every piece of data it shows comes from the admin routes (scope `admin`), with the
 * access token kept in the page's memory only. Off by default: serve it with
 * `include: [...ROUTE_GROUPS, 'console']`.
 *
 * Every answer carries a strict {@link CONSOLE_CSP}, `X-Frame-Options: DENY` and
 * `X-Content-Type-Options: nosniff`.
 *
 * @throws {KeywardError} `config_invalid` for a bad `basePath`, or when the built assets are missing.
 * @example
 * ```ts
 * app.use(auth.router({ users, include: [...ROUTE_GROUPS, 'console'], routeSets: [consoleRoutes()] }))
 * ```
 */
export function consoleRoutes(options: ConsoleRoutesOptions = {}): RouteSet {
  const base = options.basePath ?? '';
  if (base !== '' && !/^\/[A-Za-z0-9._~\-/]*[^/]$/.test(base))
    throw new KeywardError(
      'config_invalid',
      'consoleRoutes: basePath must start with "/" and not end with one',
    );
  return {
    group: 'console',
    routes() {
      const html = asset(page(base), 'text/html; charset=utf-8');
      const js = asset(readBuilt('app.js'), 'text/javascript; charset=utf-8');
      const css = asset(readBuilt('app.css'), 'text/css; charset=utf-8');
      return [
        serve(CONSOLE_PATH, 'consolePage', html),
        serve(`${CONSOLE_PATH}/app.js`, 'consoleScript', js),
        serve(`${CONSOLE_PATH}/app.css`, 'consoleStyles', css),
      ];
    },
  };
}

/** The route-table options {@link consoleFromEnv} answers: spread them into an adapter's options. */
export interface ConsoleRouteOptions {
  include?: ReadonlyArray<RouteGroup | 'console'>;
  routeSets?: readonly RouteSet[];
}

/**
 * The console as the examples switch it on: with `KEYWARD_CONSOLE=1` (or `true`) every core route
 * group plus `console`, served by {@link consoleRoutes}; unset, `0` or `false`: nothing (`{}`), so
 * the adapter serves its defaults without the console.
 *
 * @throws {KeywardError} `config_invalid` for another value of `KEYWARD_CONSOLE`.
 * @example
 * ```ts
 * app.use(auth.router({ users, ...consoleFromEnv() }))
 * ```
 */
export function consoleFromEnv(
  env: Readonly<Record<string, string | undefined>> = process.env,
  options: ConsoleRoutesOptions = {},
): ConsoleRouteOptions {
  const value = (env.KEYWARD_CONSOLE ?? '').trim().toLowerCase();
  if (value === '' || value === '0' || value === 'false') return {};
  if (value !== '1' && value !== 'true')
    throw new KeywardError('config_invalid', 'KEYWARD_CONSOLE must be 1, true, 0 or false');
  return { include: [...ROUTE_GROUPS, 'console'], routeSets: [consoleRoutes(options)] };
}
