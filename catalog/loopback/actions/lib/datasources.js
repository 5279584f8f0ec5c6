'use strict';
// Datasource operations: the registry documents and what can be asked of the live database
// (status, discovery).
const crypto = require('crypto');
const registry = require('./registry');
const runtime = require('./runtime');
const { withTimeout } = runtime;
const validate = require('./validate');
const connectors = require('./connectors');
const { httpError } = require('./errors');
const { redactSettings, hasPassword } = require('./secrets');
const { pathParam } = require('./request');

const DISCOVERY_TIMEOUT_MS = 20000;

function view(doc) {
  return {
    id: registry.publicId(doc),
    name: doc.name,
    connector: doc.connector,
    settings: redactSettings(doc.settings),
    hasPassword: hasPassword(doc.settings),
    created: doc.created,
    updated: doc.updated,
  };
}

// The caller's own datasource document, or 404 (also for another tenant's id).
async function load(req, id) {
  const doc = validate.isId(id) ? await registry.get('datasources', req.tenant, id) : null;
  if (!doc) throw httpError(404, `datasource '${String(id).slice(0, 64)}' not found`);
  return doc;
}

function bodyOf(req) {
  return validate.requireObject(req.body, 'the request body');
}

async function createDatasource(req) {
  const body = bodyOf(req);
  validate.onlyKeys(body, ['name', 'connector', 'settings'], 'field');
  const connector = validate.connectorName(body.connector);
  const settings = validate.settings(connector, body.settings);
  const now = Date.now();
  const id = crypto.randomUUID();
  const doc = await registry.put('datasources', {
    _id: registry.docId(req.tenant, id),
    tenant: req.tenant,
    name: validate.name(body.name, "'name'", { required: false }) || connector,
    connector,
    settings,
    created: now,
    updated: now,
  });
  return { status: 201, body: view(doc) };
}

async function listDatasources(req) {
  return { body: (await registry.list('datasources', req.tenant)).map(view) };
}

async function getDatasource(req) {
  return { body: view(await load(req, pathParam(req, 'datasourceId'))) };
}

// Fields given replace the stored ones; settings are merged key by key (null removes a key) so
// that a client can change a password without resending the rest. A new connector takes only
// the settings given.
async function updateDatasource(req) {
  const doc = await load(req, pathParam(req, 'datasourceId'));
  const body = bodyOf(req);
  validate.onlyKeys(body, ['name', 'connector', 'settings'], 'field');
  const connector = body.connector === undefined ? doc.connector : validate.connectorName(body.connector);
  const given = body.settings === undefined ? {} : validate.requireObject(validate.jsonValue(body.settings, 'settings'), 'settings');
  const merged = connector === doc.connector ? { ...doc.settings, ...given } : given;
  const next = {
    ...doc,
    name: body.name === undefined ? doc.name : validate.name(body.name, "'name'"),
    connector,
    settings: validate.settings(connector, merged),
    updated: Date.now(),
  };
  const saved = await registry.put('datasources', next);
  runtime.forget(doc);
  return { body: view(saved) };
}

async function deleteDatasource(req) {
  const doc = await load(req, pathParam(req, 'datasourceId'));
  const id = registry.publicId(doc);
  const force = [true, 'true', '1', ''].includes(req.query.force);
  const users = (await registry.list('models', req.tenant)).filter((model) => model.datasourceId === id);
  if (users.length > 0 && !force) {
    const names = users.map((model) => `${model.name} (${registry.publicId(model)})`).join(', ');
    throw httpError(409, `datasource '${id}' is used by models ${names}; delete them first or pass force=true`);
  }
  for (const model of users) await registry.remove('models', model);
  await registry.remove('datasources', doc);
  if (doc.connector === 'memory') await runtime.dropMemoryData(req.tenant, doc);
  runtime.forget(doc);
  return { body: { id, deleted: true, deletedModels: users.map(registry.publicId) } };
}

async function datasourceStatus(req) {
  const doc = await load(req, pathParam(req, 'datasourceId'));
  const { ds } = await runtime.dataSource(req, doc);
  try {
    await withTimeout(ds.ping(), (doc.settings.connectTimeout || connectors.DEFAULT_CONNECT_TIMEOUT_MS) + 1000);
  } catch (err) {
    runtime.forget(doc);
    throw httpError(502, `the datasource does not answer: ${(err && err.message) || err}`);
  }
  return { body: { status: 'ok', connector: doc.connector } };
}

function discoverable(doc) {
  const spec = connectors.spec(doc.connector);
  if (!spec.discovery) throw httpError(400, `connector '${doc.connector}' has no discovery: give the model's properties`);
  return spec;
}

async function datasourceDefinitions(req) {
  const doc = await load(req, pathParam(req, 'datasourceId'));
  const spec = discoverable(doc);
  const { ds } = await runtime.dataSource(req, doc);
  const owner = spec.owner(doc.settings);
  const found = await withTimeout(ds.discoverModelDefinitions({ owner, views: true }), DISCOVERY_TIMEOUT_MS);
  return { body: found.map((item) => ({ name: item.name, type: item.type, owner: item.owner || owner })) };
}

// The discovered schema of a table, with the columns the database fills in itself (serial ids,
// defaults) made optional: discovery reports them as required, and create() would then fail.
async function discover(req, doc, table) {
  const spec = discoverable(doc);
  const { ds } = await runtime.dataSource(req, doc);
  const owner = spec.owner(doc.settings);
  let schema;
  try {
    schema = await withTimeout(ds.discoverSchema(table, { owner }), DISCOVERY_TIMEOUT_MS);
  } catch (err) {
    if (/does not exist/.test(String(err && err.message))) {
      throw httpError(404, `table '${table}' not found in schema '${owner}' of the datasource`);
    }
    throw err;
  }
  const { sql, params } = spec.defaultedColumns(owner, table);
  const defaulted = new Set((await ds.execute(sql, params)).map((row) => row.column || row.COLUMN));
  for (const [name, property] of Object.entries(schema.properties)) {
    const column = (property[doc.connector] && property[doc.connector].columnName) || name;
    if (!defaulted.has(column)) continue;
    property.required = false;
    if (property.id) property.generated = true;
  }
  return { name: schema.name, table, properties: schema.properties, options: { idInjection: false } };
}

async function datasourceSchema(req) {
  const doc = await load(req, pathParam(req, 'datasourceId'));
  const table = validate.table(pathParam(req, 'table'));
  const schema = await discover(req, doc, table);
  return { body: { name: schema.name, properties: schema.properties, options: schema.options } };
}

module.exports = {
  operations: {
    createDatasource, listDatasources, getDatasource, updateDatasource, deleteDatasource,
    datasourceStatus, datasourceDefinitions, datasourceSchema,
  },
  load,
  discover,
};
