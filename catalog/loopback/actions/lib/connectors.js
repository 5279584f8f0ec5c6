'use strict';
// The connectors a datasource may use: which npm module, which settings (an allow-list with
// types), and how those settings become juggler's. Modules are required on first use only.

const SQL_SETTINGS = {
  host: 'string', port: 'port', database: 'string', user: 'string', username: 'string',
  password: 'string', ssl: 'boolean', connectTimeout: 'timeout',
};

const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
const POOL_SIZE = 4; // an action container serves one request at a time

const urlDatabase = (url) => {
  try {
    return decodeURIComponent(new URL(url).pathname.replace(/^\//, '').split('/')[0]) || undefined;
  } catch (_) {
    return undefined;
  }
};

// Where a SQL datasource connects, from `url` and the discrete settings: discrete ones win and the
// URL fills in the rest (the drivers do it the other way round, or ignore the discrete ones), so
// that updating just the password of a URL-defined datasource works.
function sqlTarget(s) {
  const target = { host: s.host, port: s.port, database: s.database, user: s.user || s.username, password: s.password, ssl: s.ssl };
  if (s.url) {
    const url = new URL(s.url);
    const sslmode = url.searchParams.get('sslmode') || url.searchParams.get('ssl');
    const fromUrl = {
      host: url.hostname || undefined,
      port: url.port ? Number(url.port) : undefined,
      database: urlDatabase(s.url),
      user: decodeURIComponent(url.username) || undefined,
      password: decodeURIComponent(url.password) || undefined,
      ssl: sslmode ? !['disable', 'false', '0'].includes(sslmode) : undefined,
    };
    for (const [key, value] of Object.entries(fromUrl)) if (target[key] === undefined) target[key] = value;
  }
  return target;
}

// CouchDB sorts only through an index (a property declared with `index: true`), and Mango picks
// that index only when the selector names its field: add `{field: {gt: null}}` for each (it
// matches every value; juggler leaves a null operand alone where it would turn `exists: true`
// into text for a String property).
function couchOrder(filter, properties) {
  const conditions = [];
  for (const item of filter.order || []) {
    const field = item.split(/\s+/)[0];
    if (properties[field] && properties[field].index && !properties[field].id) conditions.push({ [field]: { gt: null } });
  }
  if (conditions.length === 0) return filter;
  return { ...filter, where: filter.where ? { and: [filter.where, ...conditions] } : conditions.length === 1 ? conditions[0] : { and: conditions } };
}

// The PostgreSQL connector's own createTable first runs CREATE EXTENSION "uuid-ossp" and CREATE
// SCHEMA, which need privileges a tenant's login often lacks: build the CREATE TABLE from the same
// column definitions without them.
async function createPostgresTable(ds, model) {
  const connector = ds.connector;
  await ds.execute(`CREATE TABLE ${connector.tableEscaped(model)} (\n  ${connector.propertiesSQL(model)}\n)`);
  await new Promise((resolve, reject) => connector.addIndexes(model, undefined, (err) => (err ? reject(err) : resolve())));
}

const CONNECTORS = {
  memory: {
    module: null, // juggler's own
    settings: {},
    discovery: false,
    juggler: () => ({ connector: 'memory' }),
  },
  postgresql: {
    module: 'loopback-connector-postgresql',
    settings: { ...SQL_SETTINGS, url: 'url:postgres:,postgresql:', schema: 'string' },
    sql: true,
    discovery: true,
    needs: (s) => (s.url || s.database ? null : "settings need 'url' or 'database'"),
    owner: (s) => s.schema || 'public',
    // PostgreSQL folds unquoted names to lower case, and so does the connector
    defaultTable: (name) => name.toLowerCase(),
    modelOptions: (s, table) => ({ postgresql: { schema: s.schema || 'public', table } }),
    createTable: createPostgresTable,
    // columns the database fills in itself (serial, identity, defaults): not required on create
    defaultedColumns: (owner, table) => ({
      sql: 'SELECT column_name AS "column" FROM information_schema.columns WHERE table_schema = $1 AND ' +
        "table_name = $2 AND (column_default IS NOT NULL OR is_identity = 'YES' OR is_generated = 'ALWAYS')",
      params: [owner, table],
    }),
    juggler: (s) => ({
      ...sqlTarget(s),
      schema: s.schema,
      connectionTimeoutMillis: s.connectTimeout || DEFAULT_CONNECT_TIMEOUT_MS,
      max: POOL_SIZE,
      idleTimeoutMillis: 60000,
    }),
    // an idle pooled client's error is emitted on the pool: without a listener it would crash the
    // container (the connector's own `onError` setting crashes on a failed connect instead)
    guard: (ds, log) => ds.connector.pg.on('error', log),
  },
  mysql: {
    module: 'loopback-connector-mysql',
    settings: { ...SQL_SETTINGS, url: 'url:mysql:' },
    sql: true,
    discovery: true,
    needs: (s) => (s.url || s.database ? null : "settings need 'url' or 'database'"),
    owner: (s) => sqlTarget(s).database,
    defaultTable: (name) => name,
    modelOptions: (s, table) => ({ mysql: { schema: sqlTarget(s).database, table } }),
    // MariaDB reports the default of a nullable column without one as the text 'NULL'
    defaultedColumns: (owner, table) => ({
      sql: 'SELECT column_name AS `column` FROM information_schema.columns WHERE table_schema = ? AND ' +
        "table_name = ? AND ((column_default IS NOT NULL AND column_default <> 'NULL') OR extra LIKE '%auto_increment%' " +
        "OR extra LIKE '%GENERATED%')",
      params: [owner, table],
    }),
    juggler: (s) => {
      const target = sqlTarget(s);
      return {
        ...target,
        ssl: target.ssl ? {} : undefined, // mysql2 wants TLS options, {} for the defaults
        connectTimeout: s.connectTimeout || DEFAULT_CONNECT_TIMEOUT_MS,
        connectionLimit: POOL_SIZE,
      };
    },
  },
  couchdb: {
    module: 'loopback-connector-couchdb2',
    settings: { url: 'url:http:,https:', database: 'string', username: 'string', password: 'string', connectTimeout: 'timeout' },
    discovery: false,
    replaceNeedsRev: true, // a document is replaced only with its current _rev
    prepareFilter: couchOrder,
    needs: (s) => (s.url && s.database ? null : "settings need 'url' and 'database'"),
    defaultTable: (name) => name,
    modelOptions: () => ({}),
    juggler: (s) => {
      const url = new URL(s.url);
      if (s.username) url.username = encodeURIComponent(s.username);
      if (s.password) url.password = encodeURIComponent(s.password);
      url.pathname = '/';
      return {
        url: url.toString().replace(/\/$/, ''),
        database: s.database,
        requestDefaults: { timeout: s.connectTimeout || DEFAULT_CONNECT_TIMEOUT_MS * 2 },
      };
    },
  },
};

const NAMES = Object.keys(CONNECTORS);

function spec(name) {
  return CONNECTORS[name] || null;
}

// The connector module itself, or 'memory' for juggler's built-in one.
function load(name) {
  const entry = CONNECTORS[name];
  return entry.module === null ? 'memory' : require(entry.module);
}

module.exports = { NAMES, spec, load, DEFAULT_CONNECT_TIMEOUT_MS };
