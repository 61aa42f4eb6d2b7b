import type { HttpRequest, KeywardRoute } from '@keyward/core/http';
import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { KEYWARD_ROUTES } from './keyward.constants.js';
import { writeResponse } from './keyward.exceptions.js';
import type { KeywardNestRoutesOptions } from './keyward.options.js';
import { KeywardService } from './keyward.service.js';

/** A platform request (Express or Fastify): both carry these fields. */
interface PlatformRequest {
  headers: HttpRequest['headers'];
  params?: Record<string, string | undefined>;
  query?: unknown;
  body?: unknown;
  ip?: string;
}

/**
 * The platform's parsed query (Express or Fastify: a string, or an array when repeated) as core
 * takes it. A value of another shape (an extended parser's nested object) is passed as an array
 * of nothing, which the route refuses as a repeated parameter.
 */
function queryOf(query: unknown): HttpRequest['query'] {
  if (typeof query !== 'object' || query === null) return {};
  const out: NonNullable<HttpRequest['query']> = Object.create(null);
  for (const [name, value] of Object.entries(query)) {
    out[name] =
      typeof value === 'string' || (Array.isArray(value) && value.every((v) => typeof v === 'string'))
        ? (value as string | string[])
        : [];
  }
  return out;
}

type Method = 'get' | 'post' | 'put' | 'delete';

/**
 * Serves the module's routes: one generic handler per route of core's table, registered on Nest's
 * HTTP adapter (`@nestjs/platform-express` or `@nestjs/platform-fastify`) once the module's options
 * are resolved (`forRootAsync` included), after the app's controllers and before Nest's 404 handler.
 * The routes authenticate themselves (core's `handleRoute`), so the app's guards, interceptors and
 * pipes do not run for them, and Nest's global prefix does not apply: `routes.prefix` does.
 */
@Injectable()
export class KeywardRoutesRegistrar implements OnModuleInit {
  constructor(
    @Inject(KeywardService) private readonly keyward: KeywardService,
    @Inject(HttpAdapterHost) private readonly adapterHost: HttpAdapterHost,
    @Inject(KEYWARD_ROUTES) private readonly config: KeywardNestRoutesOptions | false,
  ) {}

  onModuleInit(): void {
    const adapter = this.adapterHost.httpAdapter;
    // An application context without HTTP (NestFactory.createApplicationContext) serves nothing.
    if (!this.config || adapter === undefined || adapter === null) return;
    for (const route of this.keyward.routes) {
      const method = route.method.toLowerCase() as Method;
      adapter[method](route.path, (req: PlatformRequest, res: unknown) => this.serve(route, req, res));
    }
  }

  private serve(route: KeywardRoute, req: PlatformRequest, res: unknown): void {
    const adapter = this.adapterHost.httpAdapter;
    // handleRoute never throws: every failure is already an answer.
    void this.keyward
      .run(route, {
        headers: req.headers,
        params: req.params ?? {},
        query: queryOf(req.query),
        // Nest's Express body parser reads an empty body as `{}`: a bodyless request is no body.
        body: req.headers['content-length'] === '0' ? undefined : req.body,
        remoteAddress: req.ip,
        // getToken / onAuthenticated receive the platform's own request, as in the guard.
        native: req,
      })
      .then((answer) => writeResponse(adapter, res, answer));
  }
}
