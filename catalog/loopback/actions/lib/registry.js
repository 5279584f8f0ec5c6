'use strict';
// The registry: datasources, models, change events and the data of memory datasources, kept in
// CouchDB databases `{prefix}datasources|models|changes|memory`. Document ids are `{tenant}/{id}`,
// so a tenant's listing is a key range and another tenant's id never resolves.
const { httpError } = require('./errors');

const DATABASES = ['datasources', 'models', 'changes', 'memory'];
const TIMEOUT_MS = 10000;

let ensured = null; // databases are created once per container

function config(env = process.env) {
  const raw = env.LOOPBACK_REGISTRY_URL;
  if (!raw) throw httpError(503, 'the LoopBack registry is not configured (LOOPBACK_REGISTRY_URL)');
  let url;
  try {
    url = new URL(raw);
  } catch (_) {
    throw httpError(503, 'the LoopBack registry URL is invalid');
  }
  const headers = { Accept: 'application/json', 'Content-Type': 'application/json' };
  // fetch refuses URLs with credentials: they travel as a Basic auth header instead
  if (url.username || url.password) {
    const user = decodeURIComponent(url.username);
    const password = decodeURIComponent(url.password);
    headers.Authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    url.username = '';
    url.password = '';
  }
  return { base: url.toString().replace(/\/+$/, ''), headers, prefix: env.LOOPBACK_REGISTRY_PREFIX || 'loopback_' };
}

// The registry's own password, to scrub from anything that leaves the action.
function secrets(env = process.env) {
  try {
    const password = decodeURIComponent(new URL(env.LOOPBACK_REGISTRY_URL || '').password);
    return password ? [password] : [];
  } catch (_) {
    return [];
  }
}

async function call(method, path, body) {
  const { base, headers } = config();
  let response;
  try {
    response = await fetch(`${base}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (err) {
    throw httpError(503, `the LoopBack registry is unreachable (${(err.cause && err.cause.code) || err.name})`);
  }
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch (_) {
    json = null;
  }
  return { status: response.status, json };
}

function failed(what, { status, json }) {
  const reason = json && (json.reason || json.error) ? `: ${json.reason || json.error}` : '';
  return httpError(503, `the LoopBack registry failed to ${what} (${status}${reason})`);
}

function dbName(kind) {
  return `${config().prefix}${kind}`;
}

async function ensureDatabases() {
  if (ensured === null) {
    ensured = Promise.all(
      DATABASES.map(async (kind) => {
        const answer = await call('PUT', `/${encodeURIComponent(dbName(kind))}`);
        // 412: exists; 401/403: not ours to create, the platform created it at install
        if (![201, 202, 412, 401, 403].includes(answer.status)) throw failed(`create ${dbName(kind)}`, answer);
      }),
    ).catch((err) => {
      ensured = null;
      throw err;
    });
  }
  return ensured;
}

const docPath = (kind, id) => `/${encodeURIComponent(dbName(kind))}/${encodeURIComponent(id)}`;
const docId = (tenant, id) => `${tenant}/${id}`;
// the id callers know a document by: its uuid, without the tenant
const publicId = (doc) => doc._id.slice(doc._id.indexOf('/') + 1);

async function get(kind, tenant, id) {
  await ensureDatabases();
  const answer = await call('GET', docPath(kind, docId(tenant, id)));
  if (answer.status === 404) return null;
  if (answer.status !== 200) throw failed(`read ${kind}`, answer);
  return answer.json;
}

// Writes a document (create when it has no _rev); returns it with its new _rev. A conflict
// (someone else wrote it meanwhile) is a 409.
async function put(kind, doc) {
  await ensureDatabases();
  const answer = await call('PUT', docPath(kind, doc._id), doc);
  if (answer.status === 409) throw httpError(409, `the ${kind} document was changed meanwhile; retry`);
  if (answer.status !== 201 && answer.status !== 202) throw failed(`write ${kind}`, answer);
  return { ...doc, _rev: answer.json.rev };
}

async function remove(kind, doc) {
  await ensureDatabases();
  const answer = await call('DELETE', `${docPath(kind, doc._id)}?rev=${encodeURIComponent(doc._rev)}`);
  if (answer.status === 404) return false;
  if (answer.status === 409) throw httpError(409, `the ${kind} document was changed meanwhile; retry`);
  if (answer.status !== 200 && answer.status !== 202) throw failed(`delete ${kind}`, answer);
  return true;
}

async function list(kind, tenant) {
  await ensureDatabases();
  const range = `startkey=${encodeURIComponent(JSON.stringify(`${tenant}/`))}` +
    `&endkey=${encodeURIComponent(JSON.stringify(`${tenant}/\ufff0`))}&include_docs=true`;
  const answer = await call('GET', `/${encodeURIComponent(dbName(kind))}/_all_docs?${range}`);
  if (answer.status !== 200) throw failed(`list ${kind}`, answer);
  return answer.json.rows.map((row) => row.doc).filter(Boolean);
}

async function append(kind, doc) {
  await ensureDatabases();
  const answer = await call('POST', `/${encodeURIComponent(dbName(kind))}`, doc);
  if (answer.status !== 201 && answer.status !== 202) throw failed(`append to ${kind}`, answer);
}

module.exports = { secrets, docId, publicId, get, put, remove, list, append, ensureDatabases };
