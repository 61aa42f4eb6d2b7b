import { describeRouteSetServed } from '../../testing/src/route-set-apps.js';
import { listenNest } from './__fixtures__/listen.js';
import { KeywardModule } from './keyward.module.js';

for (const platform of ['express', 'fastify'] as const) {
  describeRouteSetServed(`NestJS on ${platform}`, (kw, { users, ...routes }) =>
    listenNest(platform, KeywardModule.forRoot({ keyward: kw, users, isGlobal: true, routes })),
  );
}
