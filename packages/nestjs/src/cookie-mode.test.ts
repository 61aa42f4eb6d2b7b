import 'reflect-metadata';
import type { Principal } from '@keyward/core/http';
import { Controller, Delete, Get, HttpCode, Post } from '@nestjs/common';
import {
  COOKIE_MODE_TEST_OPTIONS,
  describeCookieModeAppRoutes,
} from '../../testing/src/cookie-app-routes.js';
import { listenNest } from './__fixtures__/listen.js';
import { CurrentUser, Scopes } from './keyward.decorators.js';
import { KeywardModule } from './keyward.module.js';

@Controller('orders')
class OrdersController {
  @Post() create(@CurrentUser() user: Principal) {
    return { by: user.sub };
  }
  @Get() list(@CurrentUser() user: Principal) {
    return { by: user.sub };
  }
  @Scopes('write') @Delete(':id') @HttpCode(204) remove() {}
}

for (const platform of ['express', 'fastify'] as const) {
  describeCookieModeAppRoutes(`NestJS on ${platform} (KeywardGuard)`, async (kw) => {
    return listenNest(
      platform,
      KeywardModule.forRoot({
        keyward: kw,
        isGlobal: true,
        errorFormat: 'contract',
        ...COOKIE_MODE_TEST_OPTIONS,
      }),
      [OrdersController],
    );
  });
}
