import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { createKeyward, createMemoryStore, type Keyward, KeywardError, MasterKey } from '@keyward/core';
import type { Principal } from '@keyward/core/http';
import {
  Controller,
  type ExecutionContext,
  Get,
  ImATeapotException,
  type INestApplication,
  Injectable,
  Module,
  Post,
  Req,
} from '@nestjs/common';
import { APP_FILTER, APP_GUARD, type HttpAdapterHost, NestFactory, Reflector } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CurrentUser, type KeywardRequest, Public, Roles, Scopes } from './keyward.decorators.js';
import { KeywardExceptionFilter } from './keyward.exceptions.js';
import { KeywardGuard } from './keyward.guard.js';
import { KeywardModule } from './keyward.module.js';
import { KeywardService } from './keyward.service.js';

@Scopes('read')
@Controller('orders')
class OrdersController {
  @Get() list(@CurrentUser() user: Principal, @CurrentUser('sub') sub: string, @Req() req: KeywardRequest) {
    return { sub, via: user.via, same: req.user === req.auth };
  }
  @Scopes('write') @Post() create() {
    return { created: true };
  }
  @Roles('support', 'admin') @Get('support') support() {
    return { ok: true };
  }
  @Public() @Get('open') open() {
    return { open: true };
  }
}

let kw: Keyward;
beforeAll(async () => {
  kw = await createKeyward({
    store: createMemoryStore(),
    masterKey: MasterKey.generate().exportText(),
    logger: false,
    audit: false,
  });
});
afterAll(() => kw.close());

async function start(
  platform: 'express' | 'fastify',
  filter: boolean,
  errorFormat: 'nest' | 'contract' | undefined,
): Promise<[INestApplication, string]> {
  @Module({
    imports: [
      KeywardModule.forRoot({ keyward: kw, isGlobal: true, ...(errorFormat ? { errorFormat } : {}) }),
    ],
    controllers: [OrdersController],
    providers: [
      { provide: APP_GUARD, useClass: KeywardGuard },
      ...(filter ? [{ provide: APP_FILTER, useClass: KeywardExceptionFilter }] : []),
    ],
  })
  class AppModule {}
  const adapter = platform === 'fastify' ? new FastifyAdapter() : new ExpressAdapter();
  const app = await NestFactory.create(AppModule, adapter, { logger: false });
  await app.listen(0, '127.0.0.1');
  return [app, `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`];
}

type Problem = { error: string; message: string; statusCode?: number; code?: string };

const bearer = async (scopes: string[], claims: Record<string, unknown> = {}) => ({
  authorization: `Bearer ${(await kw.tokens.issue({ sub: 'alice', scopes, claims })).access_token}`,
});

for (const platform of ['express', 'fastify'] as const) {
  for (const [filter, errorFormat] of [
    [true, undefined],
    [false, undefined],
    [true, 'contract'],
    [false, 'contract'],
  ] as const) {
    const contract = errorFormat === 'contract';
    /** The keyward code of an error answer, from the body of the module's format. */
    const problem = async (res: Response) => {
      const body = (await res.json()) as Problem;
      return { ...body, error: (contract ? body.error : body.code) as string };
    };
    describe(`KeywardGuard on ${platform}, ${filter ? 'with' : 'without'} KeywardExceptionFilter, errorFormat ${errorFormat ?? 'default'}`, () => {
      let app: INestApplication;
      let url: string;
      beforeAll(async () => {
        [app, url] = await start(platform, filter, errorFormat);
      });
      afterAll(() => app.close());

      it(`answers 401 with the challenge and ${contract ? "the contract's" : "Nest's"} body without credentials`, async () => {
        const res = await fetch(`${url}/orders`);
        expect(res.status).toBe(401);
        expect(res.headers.get('www-authenticate')).toBe('Bearer realm="keyward"');
        expect(await res.json()).toEqual(
          contract
            ? { error: 'missing_credentials', message: expect.any(String) }
            : {
                statusCode: 401,
                error: 'Unauthorized',
                message: expect.any(String),
                code: 'missing_credentials',
              },
        );
      });
      it('answers 401 invalid_token for a tampered token, keeping token_expired-style codes', async () => {
        const { authorization } = await bearer(['read']);
        const res = await fetch(`${url}/orders`, { headers: { authorization: `${authorization}x` } });
        expect(res.status).toBe(401);
        expect(res.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
        expect((await problem(res)).error).toMatch(/^token_/);
      });
      it('puts the principal on request.user and request.auth, and @CurrentUser reads it', async () => {
        const res = await fetch(`${url}/orders`, { headers: await bearer(['read']) });
        expect(await res.json()).toEqual({ sub: 'alice', via: 'jwt', same: true });
      });
      it('requires the controller scopes and the handler scopes together', async () => {
        const denied = await fetch(`${url}/orders`, { method: 'POST', headers: await bearer(['read']) });
        expect(denied.status).toBe(403);
        expect(denied.headers.get('www-authenticate')).toMatch(/error="insufficient_scope"/);
        expect((await problem(denied)).error).toBe('insufficient_scope');
        const writeOnly = await fetch(`${url}/orders`, { method: 'POST', headers: await bearer(['write']) });
        expect(writeOnly.status).toBe(403);
        const both = await fetch(`${url}/orders`, {
          method: 'POST',
          headers: await bearer(['read', 'write']),
        });
        expect(both.status).toBe(201);
      });
      it('requires one of the @Roles()', async () => {
        expect((await fetch(`${url}/orders/support`, { headers: await bearer(['read']) })).status).toBe(403);
        const admin = await bearer(['read'], { roles: ['admin'] });
        expect((await fetch(`${url}/orders/support`, { headers: admin })).status).toBe(200);
      });
      it('lets @Public() routes through, even with a bad credential', async () => {
        expect((await fetch(`${url}/orders/open`)).status).toBe(200);
        const bad = await fetch(`${url}/orders/open`, { headers: { authorization: 'Basic x' } });
        expect(bad.status).toBe(200);
      });
      it('answers a malformed Authorization header with 400 invalid_request', async () => {
        const res = await fetch(`${url}/orders`, { headers: { authorization: 'Basic YTpi' } });
        expect(res.status).toBe(400);
        expect((await problem(res)).error).toBe('invalid_request');
      });
    });
  }
}

describe('KeywardGuard hooks', () => {
  const context = (headers: Record<string, string>) => {
    const request: Record<string, unknown> = { headers };
    const response = {};
    return {
      request,
      ctx: {
        getType: () => 'http',
        getHandler: () => () => undefined,
        getClass: () => class {},
        switchToHttp: () => ({ getRequest: () => request, getResponse: () => response }),
      } as unknown as ExecutionContext,
    };
  };
  const adapterHost = { httpAdapter: { setHeader: vi.fn() } } as unknown as HttpAdapterHost;

  @Injectable()
  class SessionGuard extends KeywardGuard {
    protected override getCredentialHeaders(context: ExecutionContext) {
      const { headers } = context.switchToHttp().getRequest<{ headers: Record<string, string> }>();
      return { authorization: `Bearer ${headers['x-session']}` };
    }
    protected override onAuthenticated(principal: Principal, context: ExecutionContext) {
      context.switchToHttp().getRequest<{ tenant?: string }>().tenant = principal.claims.tenant as string;
    }
    protected override handleError(err: unknown) {
      return err instanceof KeywardError ? new ImATeapotException(err.code) : err;
    }
  }

  it('lets a subclass choose the credential, what to do with the principal, and the error', async () => {
    const onDenied = vi.fn();
    const service = new KeywardService(kw, { keyward: kw, onDenied });
    const guard = new SessionGuard(service, new Reflector(), adapterHost);
    const { access_token } = await kw.tokens.issue({ sub: 'bob', claims: { tenant: 'acme' } });
    const ok = context({ 'x-session': access_token });
    await expect(guard.canActivate(ok.ctx)).resolves.toBe(true);
    expect(ok.request).toMatchObject({ tenant: 'acme' });
    expect(ok.request.user).toBeUndefined();
    await expect(guard.canActivate(context({ 'x-session': 'nope' }).ctx)).rejects.toBeInstanceOf(
      ImATeapotException,
    );
    expect(onDenied).not.toHaveBeenCalled();
  });

  it('denies a non-HTTP context (GraphQL, RPC) unless a subclass reads its credential', async () => {
    const guard = new KeywardGuard(new KeywardService(kw, { keyward: kw }), new Reflector(), adapterHost);
    const rpc = { ...context({}).ctx, getType: () => 'rpc' } as ExecutionContext;
    await expect(guard.canActivate(rpc)).rejects.toMatchObject({ status: 401 });
  });

  it("hands the module's getToken an empty request outside HTTP, never undefined", async () => {
    const seen: unknown[] = [];
    const service = new KeywardService(kw, {
      keyward: kw,
      getToken: (request) => {
        seen.push(request);
        return undefined;
      },
    });
    const guard = new KeywardGuard(service, new Reflector(), adapterHost);
    const rpc = { ...context({}).ctx, getType: () => 'rpc' } as ExecutionContext;
    await expect(guard.canActivate(rpc)).rejects.toMatchObject({ status: 401 });
    expect(seen).toEqual([{ headers: {} }]);
  });

  it('reports denials to onDenied and sets the challenge through the platform adapter', async () => {
    const onDenied = vi.fn();
    const guard = new KeywardGuard(
      new KeywardService(kw, { keyward: kw, onDenied }),
      new Reflector(),
      adapterHost,
    );
    await expect(guard.canActivate(context({}).ctx)).rejects.toMatchObject({ status: 401 });
    expect(onDenied).toHaveBeenCalledWith('missing_credentials', 401);
    expect(adapterHost.httpAdapter.setHeader).toHaveBeenCalledWith(
      {},
      'www-authenticate',
      'Bearer realm="keyward"',
    );
  });
});
