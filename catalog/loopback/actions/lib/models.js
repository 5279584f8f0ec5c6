'use strict';
// Model operations: a model is a registry document (name, properties, options, table) bound to
// one of the tenant's datasources; its records are served at /{tenant}/{modelId}/{name}.
const crypto = require('crypto');
const registry = require('./registry');
const runtime = require('./runtime');
const validate = require('./validate');
const connectors = require('./connectors');
const datasources = require('./datasources');
const { httpError } = require('./errors');
const { pathParam } = require('./request');

const FIELDS = ['name', 'datasourceId', 'properties', 'options', 'table', 'discover'];

function view(doc) {
  const id = registry.publicId(doc);
  return {
    id,
    name: doc.name,
    datasourceId: doc.datasourceId,
    table: doc.table,
    properties: doc.properties,
    options: doc.options,
    path: `/${doc.tenant}/${id}/${doc.name}`,
    created: doc.created,
    updated: doc.updated,
  };
}

async function load(req, id) {
  const doc = validate.isId(id) ? await registry.get('models', req.tenant, id) : null;
  if (!doc) throw httpError(404, `model '${String(id).slice(0, 64)}' not found`);
  return doc;
}

// Where a model's records go must exist: a SQL table is created for this model only when it is
// missing, never altered when it is there; CouchDB gets the indexes the properties ask for;
// memory needs nothing.
async function provision(req, dsDoc, modelDoc) {
  const spec = connectors.spec(dsDoc.connector);
  const wantsIndexes = Object.values(modelDoc.properties).some((property) => property.index);
  if (!spec.sql && !(dsDoc.connector === 'couchdb' && wantsIndexes)) return;
  // not saved yet: no revision, so that no cached definition of the model stands in for it
  const draft = { ...modelDoc, _rev: undefined };
  await runtime.withModel(req, dsDoc, draft, {}, async (Model, ds) => {
    if (spec.sql) {
      const owner = spec.owner(dsDoc.settings);
      const tables = await ds.discoverModelDefinitions({ owner });
      if (tables.some((item) => item.name === runtime.tableOf(dsDoc, draft))) return;
    }
    if (spec.createTable) await spec.createTable(ds, Model.modelName);
    else await ds.autoupdate([Model.modelName]);
  });
}

// The definition a body asks for, on top of `base` (an existing model when updating).
async function definition(req, body, base) {
  validate.onlyKeys(body, FIELDS, 'field');
  const name = body.name === undefined && base ? base.name : validate.modelName(body.name);
  const datasourceId = body.datasourceId === undefined && base ? base.datasourceId : body.datasourceId;
  if (datasourceId === undefined) throw httpError(400, "'datasourceId' is required");
  const dsDoc = await datasources.load(req, datasourceId);
  const discover = body.discover === true || body.discover === 'true';
  let table = body.table === undefined && base ? base.table : validate.table(body.table);
  let properties;
  let options = body.options === undefined && base ? base.options : validate.modelOptions(body.options);
  if (discover) {
    if (body.properties !== undefined) throw httpError(400, "give either 'properties' or 'discover', not both");
    const spec = connectors.spec(dsDoc.connector);
    table = table || (spec.defaultTable ? spec.defaultTable(name) : name);
    const schema = await datasources.discover(req, dsDoc, table);
    properties = schema.properties;
    options = { ...schema.options, ...(body.options === undefined ? {} : options) };
  } else if (body.properties === undefined && base) {
    properties = base.properties;
  } else {
    if (body.properties === undefined) throw httpError(400, "'properties' is required (or 'discover': true)");
    properties = validate.properties(body.properties);
  }
  const doc = { ...(base || {}), name, datasourceId, properties, options, updated: Date.now() };
  if (table === undefined) delete doc.table;
  else doc.table = table;
  return { doc, dsDoc, discovered: discover };
}

async function createModel(req) {
  const body = validate.requireObject(req.body, 'the request body');
  const { doc, dsDoc, discovered } = await definition(req, body, null);
  const id = crypto.randomUUID();
  Object.assign(doc, { _id: registry.docId(req.tenant, id), tenant: req.tenant, created: doc.updated });
  if (!discovered) await provision(req, dsDoc, doc);
  return { status: 201, body: view(await registry.put('models', doc)) };
}

async function listModels(req) {
  return { body: (await registry.list('models', req.tenant)).map(view) };
}

async function getModel(req) {
  return { body: view(await load(req, pathParam(req, 'modelId'))) };
}

async function updateModel(req) {
  const base = await load(req, pathParam(req, 'modelId'));
  const body = validate.requireObject(req.body, 'the request body');
  const { doc, dsDoc, discovered } = await definition(req, body, base);
  if (!discovered) await provision(req, dsDoc, doc);
  return { body: view(await registry.put('models', doc)) };
}

// The table (or collection) stays: a model is a view on data the tenant owns.
async function deleteModel(req) {
  const doc = await load(req, pathParam(req, 'modelId'));
  await registry.remove('models', doc);
  return { body: { id: registry.publicId(doc), deleted: true } };
}

module.exports = {
  operations: { createModel, listModels, getModel, updateModel, deleteModel },
  load,
};
