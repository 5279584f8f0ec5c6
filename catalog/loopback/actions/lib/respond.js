'use strict';
// One wrapper for every operation: it builds the request, runs the handler and turns its result
// or error into a web response ({statusCode, headers, body}) or a direct one (body | {error}).
const { httpError, isHttpError, fromDatasource } = require('./errors');
const { buildRequest, isPlainObject, isWeb } = require('./request');
const { scrubber } = require('./secrets');
const registry = require('./registry');

const JSON_HEADERS = { 'content-type': 'application/json' };

function reply(web, statusCode, body) {
  if (web) return body === undefined ? { statusCode, headers: JSON_HEADERS } : { statusCode, headers: JSON_HEADERS, body };
  return body === undefined ? {} : body;
}

function replyError(web, statusCode, message) {
  if (web) return { statusCode, headers: JSON_HEADERS, body: { error: message, code: statusCode } };
  return { error: { message, statusCode } };
}

// handler(req) -> {status?, body}; req.secrets collects the passwords met on the way, so that
// no message that leaves the action carries them. `pathNames`: the route's path parameters.
function operation(name, pathNames, handler) {
  return async function run(params) {
    const input = isPlainObject(params) ? params : {};
    const env = process.env;
    const web = isWeb(input, env);
    const secrets = registry.secrets(env);
    try {
      const req = buildRequest(input, env, web, pathNames);
      req.secrets = secrets;
      const { status = 200, body } = await handler(req);
      return reply(web, status, body);
    } catch (err) {
      const scrub = scrubber(secrets);
      let mapped = isHttpError(err) ? err : fromDatasource(err);
      if (mapped === null) {
        console.error(`${name}: unexpected error: ${scrub((err && err.stack) || err)}`);
        mapped = httpError(500, `internal error in the LoopBack service (${name})`);
      } else if (mapped.statusCode >= 500) {
        console.error(`${name}: ${mapped.statusCode} ${scrub(mapped.message)}`);
      }
      return replyError(web, mapped.statusCode, scrub(mapped.message));
    }
  };
}

module.exports = { operation };
