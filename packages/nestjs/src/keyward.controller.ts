import type { HttpRequest } from '@keyward/core/http';
import { Controller, Delete, Get, Inject, Post, Put, Req, Res } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { Public } from './keyward.decorators.js';
import { writeResponse } from './keyward.exceptions.js';
import { KeywardService } from './keyward.service.js';

/**
 * The routes of the HTTP contract (login, refresh, logout, /me, admin keys, API keys, secrets,
 * JWKS, discovery, health, metrics, OAuth introspection and revocation), mounted by `KeywardModule.forRoot({ routes: true })`. Each method
 * delegates to core's route of the same name, which authenticates and checks scopes itself, so
 * the controller is `@Public()` for a global guard.
 *
 * @example
 * ```ts
 * KeywardModule.forRoot({ users: staticUsers(process.env.DEMO_USERS ?? ''), routes: true })
 * ```
 */
@Public()
@Controller()
export class KeywardController {
  constructor(
    @Inject(KeywardService) private readonly keyward: KeywardService,
    @Inject(HttpAdapterHost) private readonly adapterHost: HttpAdapterHost,
  ) {}

  private async run(name: string, req: HttpRequest, res: unknown): Promise<void> {
    const answer = await this.keyward.handle(name, {
      headers: req.headers,
      params: req.params,
      // Nest's Express body parser reads an empty body as `{}`: a bodyless request is no body.
      body: req.headers['content-length'] === '0' ? undefined : req.body,
      // The platform request (Express or Fastify) reports the client address as `ip`.
      remoteAddress: (req as { ip?: string }).ip,
    });
    writeResponse(this.adapterHost.httpAdapter, res, answer);
  }

  @Post('auth/login') login(@Req() req: HttpRequest, @Res() res: unknown) {
    return this.run('login', req, res);
  }
  @Post('auth/refresh') refresh(@Req() req: HttpRequest, @Res() res: unknown) {
    return this.run('refresh', req, res);
  }
  @Post('auth/logout') logout(@Req() req: HttpRequest, @Res() res: unknown) {
    return this.run('logout', req, res);
  }
  @Get('me') me(@Req() req: HttpRequest, @Res() res: unknown) {
    return this.run('me', req, res);
  }
  @Get('admin/keys') listKeys(@Req() req: HttpRequest, @Res() res: unknown) {
    return this.run('listKeys', req, res);
  }
  @Post('admin/keys/rotate') rotateKey(@Req() req: HttpRequest, @Res() res: unknown) {
    return this.run('rotateKey', req, res);
  }
  @Post('admin/keys/:kid/revoke') revokeKey(@Req() req: HttpRequest, @Res() res: unknown) {
    return this.run('revokeKey', req, res);
  }
  @Post('api-keys') createApiKey(@Req() req: HttpRequest, @Res() res: unknown) {
    return this.run('createApiKey', req, res);
  }
  @Get('api-keys') listApiKeys(@Req() req: HttpRequest, @Res() res: unknown) {
    return this.run('listApiKeys', req, res);
  }
  @Delete('api-keys/:id') deleteApiKey(@Req() req: HttpRequest, @Res() res: unknown) {
    return this.run('deleteApiKey', req, res);
  }
  @Put('secrets/:name') putSecret(@Req() req: HttpRequest, @Res() res: unknown) {
    return this.run('putSecret', req, res);
  }
  @Get('secrets/:name') getSecret(@Req() req: HttpRequest, @Res() res: unknown) {
    return this.run('getSecret', req, res);
  }
  @Get('.well-known/jwks.json') jwks(@Req() req: HttpRequest, @Res() res: unknown) {
    return this.run('jwks', req, res);
  }
  @Get('.well-known/oauth-authorization-server') oauthMetadata(@Req() req: HttpRequest, @Res() res: unknown) {
    return this.run('oauthMetadata', req, res);
  }
  @Get('.well-known/openid-configuration') openidConfiguration(@Req() req: HttpRequest, @Res() res: unknown) {
    return this.run('openidConfiguration', req, res);
  }
  @Get('health/live') live(@Req() req: HttpRequest, @Res() res: unknown) {
    return this.run('live', req, res);
  }
  @Get('health/ready') ready(@Req() req: HttpRequest, @Res() res: unknown) {
    return this.run('ready', req, res);
  }
  // OAuth 2.0 (RFC 7662 / RFC 7009): form-encoded bodies, parsed by the platform's urlencoded
  // parser (Express and Fastify alike); core refuses any other content type.
  @Post('oauth/introspect') introspectToken(@Req() req: HttpRequest, @Res() res: unknown) {
    return this.run('introspectToken', req, res);
  }
  @Post('oauth/revoke') revokeToken(@Req() req: HttpRequest, @Res() res: unknown) {
    return this.run('revokeToken', req, res);
  }
  @Get('metrics') metrics(@Req() req: HttpRequest, @Res() res: unknown) {
    return this.run('metrics', req, res);
  }
}
