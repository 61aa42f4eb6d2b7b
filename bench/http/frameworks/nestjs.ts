// Decorators are applied as plain calls so this file needs no decorator transform of its own.
import 'reflect-metadata';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Keyward } from '@keyward/core';
import {
  type CanActivate,
  Controller,
  type DynamicModule,
  type ExecutionContext,
  Get,
  Inject,
  Injectable,
  Module,
  type Provider,
  type Type,
  UnauthorizedException,
} from '@nestjs/common';
import { APP_GUARD, NestFactory } from '@nestjs/core';
import { JwtModule, JwtService } from '@nestjs/jwt';
import type { StartServer } from '../server.js';
import { BODY, bearerToken, floorCheck, ROUTE, type ServerSpec } from '../spec.js';

// The built package, as users run it: esbuild (what tsx runs the sources through) lowers a
// decorated class's private members to WeakMap lookups, which made the guard measure about 4 µs
// slower per request than its tsc build. Importing by path also keeps the root tsconfig (no
// `experimentalDecorators`) out of the package's source. Only what this file uses is typed.
const nestjsDist = new URL('../../../packages/nestjs/dist/index.js', import.meta.url);
if (!existsSync(nestjsDist))
  throw new Error('bench:http measures the built @keyward/nestjs: run `pnpm -r build` (or npm test) first');
const nestjsEntry: string = nestjsDist.href;
const { KeywardGuard, KeywardModule } = (await import(nestjsEntry)) as {
  KeywardGuard: Type<CanActivate>;
  KeywardModule: { forRoot(options: { keyward: Keyward; isGlobal: boolean }): DynamicModule };
};

class HelloController {
  hello() {
    return BODY;
  }
}
Controller()(HelloController);
const hello = Object.getOwnPropertyDescriptor(HelloController.prototype, 'hello');
if (hello === undefined) throw new Error('HelloController.hello is missing');
Get(ROUTE.slice(1))(HelloController.prototype, 'hello', hello);

/** The guard of the NestJS authentication guide (docs.nestjs.com/security/authentication), global. */
class JwtAuthGuard implements CanActivate {
  constructor(private readonly jwtService: JwtService) {}
  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<{ headers: Record<string, string>; user?: unknown }>();
    const token = bearerToken(request.headers.authorization);
    if (!token) throw new UnauthorizedException();
    try {
      request.user = await this.jwtService.verifyAsync(token);
    } catch {
      throw new UnauthorizedException();
    }
    return true;
  }
}
Injectable()(JwtAuthGuard);
Inject(JwtService)(JwtAuthGuard, undefined, 0);

/** An async global guard that lets everything through (`raw`: after the bare signature check): the floor of any guard. */
function floorGuard(spec: ServerSpec): new () => CanActivate {
  const check = floorCheck(spec);
  class FloorGuard implements CanActivate {
    async canActivate(context: ExecutionContext): Promise<boolean> {
      check?.(context.switchToHttp().getRequest<{ headers: Record<string, string> }>().headers.authorization);
      return true;
    }
  }
  Injectable()(FloorGuard);
  return FloorGuard;
}

function appModule(spec: ServerSpec, kw: Parameters<StartServer>[1]): new () => unknown {
  const imports: unknown[] = [];
  const providers: Provider[] = [];
  if (kw) {
    imports.push(KeywardModule.forRoot({ keyward: kw, isGlobal: true }));
    providers.push({ provide: APP_GUARD, useClass: KeywardGuard });
  } else if (spec.variant === 'noop' || spec.variant === 'raw') {
    providers.push({ provide: APP_GUARD, useClass: floorGuard(spec) });
  } else if (spec.variant === 'peer') {
    imports.push(
      JwtModule.register(
        spec.alg === 'HS256'
          ? { secret: spec.peer.secret ?? '', verifyOptions: { algorithms: ['HS256'] } }
          : { publicKey: spec.peer.publicPem ?? '', verifyOptions: { algorithms: ['ES256'] } },
      ),
    );
    providers.push({ provide: APP_GUARD, useClass: JwtAuthGuard });
  }
  class AppModule {}
  Module({ imports: imports as never[], controllers: [HelloController], providers })(AppModule);
  return AppModule;
}

/** NestJS 12 on the Express or the Fastify platform: no auth, `KeywardGuard`, or @nestjs/jwt with the guide's guard. */
export const start: StartServer = async (spec, kw) => {
  // Only the platform in use is loaded.
  const adapter =
    spec.framework === 'nest-fastify'
      ? new (await import('@nestjs/platform-fastify')).FastifyAdapter()
      : new (await import('@nestjs/platform-express')).ExpressAdapter();
  const app = await NestFactory.create(appModule(spec, kw), adapter, { logger: false });
  await app.listen(0, '127.0.0.1');
  return {
    port: (app.getHttpServer().address() as AddressInfo).port,
    close: () => app.close(),
  };
};
