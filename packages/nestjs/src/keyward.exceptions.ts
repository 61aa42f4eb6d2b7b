import { isKeywardError } from '@keyward/core';
import { asKeywardError, type HttpResponse, problemResponse, toHttpProblem } from '@keyward/core/http';
import {
  type ArgumentsHost,
  BadRequestException,
  Catch,
  ForbiddenException,
  HttpException,
  type HttpServer,
  Inject,
  Optional,
  UnauthorizedException,
} from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';
import { type KeywardErrorFormat, problemBodyOf } from './keyward.options.js';
import { KeywardService } from './keyward.service.js';

/**
 * The Nest exception for a keyward error: `BadRequestException`, `UnauthorizedException`,
 * `ForbiddenException` or an `HttpException`, whose `cause` is the `KeywardError` and whose body is
 * Nest's `{statusCode, error, message}` plus keyward's `code` (`format: 'nest'`, the default) or the
 * contract's `{error, message}` (`format: 'contract'`). Anything else is returned unchanged.
 *
 * @example
 * ```ts
 * try { kw.jwt.verify(token) } catch (err) { throw toHttpException(err) }
 * ```
 */
export function toHttpException(err: unknown, format: KeywardErrorFormat = 'nest'): unknown {
  if (!isKeywardError(err)) return err;
  const problem = toHttpProblem(err);
  const body = problemBodyOf(format)(problem) as Record<string, unknown>;
  if (problem.status === 400) return new BadRequestException(body, { cause: err });
  if (problem.status === 401) return new UnauthorizedException(body, { cause: err });
  if (problem.status === 403) return new ForbiddenException(body, { cause: err });
  return new HttpException(body, problem.status, { cause: err });
}

/**
 * The keyward error behind an exception: a `KeywardError`, one wrapped by {@link toHttpException},
 * or a 4xx of the platform's body parser or router (Nest wraps those in an `HttpException` with
 * the original error as `cause`) as core maps it (`asKeywardError`). `undefined` for any other
 * exception.
 *
 * @example
 * ```ts
 * const err = keywardErrorOf(exception)
 * if (err !== undefined) writeResponse(adapter, response, problemResponse(err))
 * ```
 */
export function keywardErrorOf(exception: unknown): unknown {
  if (isKeywardError(exception)) return exception;
  if (!(exception instanceof HttpException) || exception.getStatus() >= 500) return undefined;
  return asKeywardError(exception.cause);
}

/**
 * Writes core's framework-neutral answer through Nest's HTTP adapter (Express or Fastify alike).
 *
 * @example
 * ```ts
 * writeResponse(this.adapterHost.httpAdapter, res, await keyward.handle('me', req))
 * ```
 */
export function writeResponse(adapter: HttpServer, response: unknown, answer: HttpResponse): void {
  for (const [name, value] of Object.entries(answer.headers)) adapter.setHeader(response, name, value);
  adapter.reply(response, answer.body, answer.status);
}

/**
 * A global exception filter that answers keyward's errors, and the body parser's 4xx on either
 * platform, with keyward's status, `WWW-Authenticate` challenge and `Cache-Control: no-store`, the
 * body in the module's `errorFormat` (Nest's shape plus `code` by default, read from the
 * `KeywardService` when the filter can inject it). Other exceptions get Nest's usual answer.
 *
 * @example
 * ```ts
 * providers: [{ provide: APP_FILTER, useClass: KeywardExceptionFilter }]
 * ```
 */
@Catch()
export class KeywardExceptionFilter extends BaseExceptionFilter {
  @Optional() @Inject(KeywardService) protected readonly keyward?: KeywardService;

  /** The body format of keyward's errors: the module's `errorFormat`, `nest` without the module. */
  protected get errorFormat(): KeywardErrorFormat {
    return this.keyward?.errorFormat ?? 'nest';
  }

  override catch(exception: unknown, host: ArgumentsHost): void {
    const err = keywardErrorOf(exception);
    const adapter = this.applicationRef ?? this.httpAdapterHost?.httpAdapter;
    if (err === undefined || host.getType() !== 'http' || !adapter) {
      super.catch(exception, host);
      return;
    }
    writeResponse(
      adapter,
      host.switchToHttp().getResponse(),
      problemResponse(err, undefined, problemBodyOf(this.errorFormat)),
    );
  }
}
