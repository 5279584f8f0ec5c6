'use strict';
// Who is calling and what they sent, in both ways an operation is invoked:
//   web: a raw-http web action behind the API routes (__ow_method, __ow_body, __ow_query, ...);
//   direct: `wsk action invoke` with the request's fields as plain params.
const qs = require('qs');
const { httpError } = require('./errors');

const OWNER = 'whisk.system';
const TENANT = /^[A-Za-z0-9_@.-][A-Za-z0-9 _@.-]{0,255}$/;

const isPlainObject = (value) =>
  value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype;

// Web mode only when the action runs as its owner, which happens only through a web invocation:
// a tenant's direct invocation runs in the tenant's namespace whatever `__ow_*` params it sends.
const isWeb = (params, env) => env.__OW_NAMESPACE === OWNER && typeof params.__ow_method === 'string';

// The tenant is never taken from what a caller can set: the platform sets `__ow_user` on web
// invocations and `__OW_NAMESPACE` is the namespace the activation runs in.
function resolveTenant(params, env) {
  const namespace = env.__OW_NAMESPACE;
  const tenant = namespace === OWNER ? params.__ow_user : namespace;
  if (typeof tenant !== 'string' || !TENANT.test(tenant)) {
    throw httpError(401, 'cannot determine the tenant: the request is not authenticated');
  }
  return tenant;
}

function decodeBase64(text) {
  const compact = text.replace(/\s+/g, '');
  if (compact.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) return null;
  return Buffer.from(compact, 'base64').toString('utf8');
}

// __ow_body is base64 for JSON and binary content types and plain text otherwise; try the likely
// reading first and fall back to the other, so a client's missing content type still works.
function parseBody(raw, headers) {
  if (raw === undefined || raw === null || raw === '') return undefined;
  if (typeof raw !== 'string') return raw;
  const type = String((headers && headers['content-type']) || '').toLowerCase();
  const textual = type.startsWith('text/') || type.includes('x-www-form-urlencoded');
  const readings = textual ? [raw, decodeBase64(raw)] : [decodeBase64(raw), raw];
  for (const text of readings) {
    if (text === null) continue;
    try {
      return JSON.parse(text);
    } catch (_) {
      // the other reading
    }
  }
  throw httpError(400, 'malformed JSON in the request body');
}

// ?filter={"where":...} or LoopBack's bracket style ?filter[where][name]=x (qs does both shapes).
function parseQuery(raw) {
  if (typeof raw !== 'string' || raw === '') return {};
  return qs.parse(raw.replace(/^\?/, ''), { depth: 8, parameterLimit: 200, arrayLimit: 100 });
}

function pick(params, names) {
  const out = {};
  for (const name of names) {
    if (params[name] !== undefined && params[name] !== null && params[name] !== '') out[name] = String(params[name]);
  }
  return out;
}

// A path parameter the operation cannot do without.
function pathParam(req, name) {
  const value = req.path[name];
  if (value === undefined) throw httpError(400, `the parameter '${name}' is required`);
  return value;
}

function withoutReserved(params, pathNames) {
  const out = {};
  for (const [key, value] of Object.entries(params)) {
    if (!key.startsWith('__ow_') && !pathNames.includes(key)) out[key] = value;
  }
  return out;
}

// The request an operation sees: {web, tenant, path, query, body}, `path` holding the operation's
// path parameters (`pathNames`). `body` is undefined when nothing was sent; in direct mode the
// params (less the path parameters) are both body and query.
function buildRequest(params, env, web, pathNames) {
  const tenant = resolveTenant(params, env);
  if (web) {
    const headers = isPlainObject(params.__ow_headers) ? params.__ow_headers : {};
    return {
      web,
      tenant,
      method: params.__ow_method.toLowerCase(),
      path: pick(params, pathNames),
      query: parseQuery(params.__ow_query),
      body: parseBody(params.__ow_body, headers),
    };
  }
  const rest = withoutReserved(params, pathNames);
  return { web, tenant, method: null, path: pick(params, pathNames), query: rest, body: rest };
}

module.exports = { isWeb, buildRequest, pathParam, isPlainObject };
