import { consoleRoutes } from '@keyward/console';
import { describeConsoleRouteSet } from '../../testing/src/console-routes.js';
import { listenNest } from './__fixtures__/listen.js';
import { KeywardModule } from './keyward.module.js';

// The console reaches Nest through the module's `routes` like any route set: no Nest-specific code.
for (const platform of ['express', 'fastify'] as const) {
  describeConsoleRouteSet(`NestJS on ${platform}`, consoleRoutes(), (kw, routes) =>
    listenNest(platform, KeywardModule.forRoot({ keyward: kw, isGlobal: true, routes })),
  );
}
