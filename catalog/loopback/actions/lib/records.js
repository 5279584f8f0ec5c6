'use strict';
// Record operations on /{tenant}/{modelId}/{modelName}[/{recordId}]. Every call reads the model
// and datasource documents, so a deleted model answers 404 at once and an updated datasource
// is used at once. Writes append a change event for the changes feed.
const registry = require('./registry');
const runtime = require('./runtime');
const validate = require('./validate');
const connectors = require('./connectors');
const models = require('./models');
const { pathParam } = require('./request');
const { httpError } = require('./errors');
const { scrubber } = require('./secrets');

// The caller's model and its datasource; anything that does not match is simply not found.
async function target(req) {
  const modelId = pathParam(req, 'modelId');
  const notFound = () => httpError(404, `model '${String(req.path.modelName || modelId).slice(0, 64)}' not found`);
  if (req.path.tenant !== undefined && req.path.tenant !== req.tenant) throw notFound();
  if (req.web && req.path.tenant === undefined) throw httpError(400, "the parameter 'tenant' is required");
  const modelDoc = await models.load(req, modelId).catch((err) => {
    throw err.statusCode === 404 ? notFound() : err;
  });
  if (req.path.modelName !== undefined && req.path.modelName !== modelDoc.name) throw notFound();
  const dsDoc = await registry.get('datasources', req.tenant, modelDoc.datasourceId);
  if (!dsDoc) throw httpError(404, `the datasource of model '${modelDoc.name}' no longer exists`);
  return { modelDoc, dsDoc };
}

function recordBody(req) {
  const body = validate.requireObject(req.body, 'the record');
  for (const key of Object.keys(body)) {
    if (validate.isReserved(key)) throw httpError(400, `a record may not have the key '${key}'`);
  }
  return body;
}

// juggler passes values of the wrong type on to the database (NaN for 'abc' as a Number): refuse
// them here with a message that names the property.
const TYPE_CHECKS = {
  Number: (value) => (typeof value === 'number' && Number.isFinite(value)) || (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))),
  Boolean: (value) => typeof value === 'boolean' || value === 'true' || value === 'false',
  Date: (value) => (typeof value === 'string' || typeof value === 'number') && !Number.isNaN(new Date(value).getTime()),
  String: (value) => typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean',
  Array: (value) => Array.isArray(value),
};

function checkTypes(body, Model) {
  const properties = Model.definition.properties;
  for (const [key, value] of Object.entries(body)) {
    const property = properties[key];
    if (!property || value === null || value === undefined) continue;
    const check = Array.isArray(property.type) ? TYPE_CHECKS.Array : TYPE_CHECKS[property.type && property.type.name];
    if (check && !check(value)) {
      const expected = Array.isArray(property.type) ? 'Array' : property.type.name;
      throw httpError(400, `property '${key}' must be a ${expected}`);
    }
  }
  return body;
}

// SQL connectors ignore where keys (and fields) that are not properties: a typo would match every
// record. Refuse them instead, unless the model is schemaless (strict: false).
function checkFilterKeys(filter, Model) {
  if (Model.definition.settings.strict === false) return filter;
  const properties = Model.definition.properties;
  const names = Array.isArray(filter.fields) ? filter.fields : Object.keys(filter.fields || {});
  for (const name of names) {
    if (!properties[name]) throw validate.bad(`invalid filter: field '${name.slice(0, 64)}' is not a property of the model`);
  }
  checkWhereKeys(filter.where, Model);
  return filter;
}

function checkWhereKeys(where, Model) {
  if (!where || Model.definition.settings.strict === false) return where;
  const properties = Model.definition.properties;
  const visit = (clause) => {
    for (const [key, value] of Object.entries(clause)) {
      if (key === 'and' || key === 'or') {
        if (!Array.isArray(value)) throw validate.bad(`invalid filter: '${key}' takes an array of conditions`);
        value.forEach((item) => {
          if (item === null || typeof item !== 'object' || Array.isArray(item)) throw validate.bad(`invalid filter: '${key}' takes an array of conditions`);
          visit(item);
        });
      } else if (!properties[key.split('.')[0]]) {
        throw validate.bad(`invalid filter: '${key.slice(0, 64)}' is not a property of the model`);
      }
    }
  };
  visit(where);
  return where;
}

// Reads a record back after a write, so the answer (and the change event) shows what the
// database holds, defaults included.
async function reread(Model, id, fallback) {
  const fresh = await Model.findById(id);
  return (fresh || fallback).toJSON();
}

// The record id from the path, as the model's id property wants it; an id that cannot be one
// (text for a numeric id) names no record.
function recordId(req, Model) {
  const raw = pathParam(req, 'recordId');
  const idName = Model.definition.idName() || 'id';
  const property = Model.definition.properties[idName];
  const numeric = property && property.type === Number;
  if (numeric && !/^-?\d+$/.test(raw)) throw httpError(404, `record '${raw.slice(0, 64)}' not found`);
  return { idName, id: numeric ? Number(raw) : raw };
}

// The body must not move the record to another id.
function sameId(body, idName, id) {
  if (body[idName] !== undefined && body[idName] !== null && String(body[idName]) !== String(id)) {
    throw httpError(400, `the record's '${idName}' differs from the one in the URL`);
  }
  const rest = { ...body };
  delete rest[idName];
  return rest;
}

// A CouchDB model's changes are read from its database's own changes feed (writes made behind the
// catalog's back count too), so the catalog logs none of them.
const ownChangesFeed = (dsDoc) => dsDoc.connector === 'couchdb';

async function recordChange(req, dsDoc, modelDoc, op, id, record) {
  if (ownChangesFeed(dsDoc)) return;
  try {
    await registry.append('changes', {
      tenant: req.tenant,
      modelId: registry.publicId(modelDoc),
      model: modelDoc.name,
      datasourceId: modelDoc.datasourceId,
      op,
      id,
      record,
      time: Date.now(),
    });
  } catch (err) {
    // the write itself succeeded: losing its change event must not fail the request
    console.error(`change event not recorded: ${scrubber(req.secrets)(err.message)}`);
  }
}

const missing = (id) => httpError(404, `record '${String(id).slice(0, 64)}' not found`);

async function createRecord(req) {
  const { modelDoc, dsDoc } = await target(req);
  const body = recordBody(req);
  const { id, record } = await runtime.withModel(req, dsDoc, modelDoc, { write: true }, async (Model) => {
    const created = await Model.create(checkTypes(body, Model));
    const id = created[Model.definition.idName() || 'id'];
    return { id, record: await reread(Model, id, created) };
  });
  await recordChange(req, dsDoc, modelDoc, 'create', id, record);
  return { status: 201, body: record };
}

async function findRecords(req) {
  const { modelDoc, dsDoc } = await target(req);
  const filter = validate.filter(req.query.filter);
  const records = await runtime.withModel(req, dsDoc, modelDoc, {}, async (Model) => {
    checkFilterKeys(filter, Model);
    const spec = connectors.spec(dsDoc.connector);
    const query = spec.prepareFilter ? spec.prepareFilter(filter, Model.definition.properties) : filter;
    try {
      return (await Model.find(query)).map((record) => record.toJSON());
    } catch (err) {
      if (/Cannot sort on field/.test(String(err && err.message))) {
        throw httpError(400, `${err.message}: declare the property with "index": true to order by it`);
      }
      throw err;
    }
  });
  return { body: records };
}

async function countRecords(req) {
  const { modelDoc, dsDoc } = await target(req);
  const where = validate.where(req.query.where);
  const count = await runtime.withModel(req, dsDoc, modelDoc, {}, (Model) => Model.count(checkWhereKeys(where, Model)));
  return { body: { count } };
}

async function findRecordById(req) {
  const { modelDoc, dsDoc } = await target(req);
  const record = await runtime.withModel(req, dsDoc, modelDoc, {}, async (Model) => {
    const { id } = recordId(req, Model);
    const found = await Model.findById(id);
    if (!found) throw missing(id);
    return found.toJSON();
  });
  return { body: record };
}

// Replace and patch: the body checked against the model and the id in the URL, the record found,
// `write(Model, current, id, data)` applied, the result read back and its change recorded.
async function updateRecord(req, write) {
  const { modelDoc, dsDoc } = await target(req);
  const body = recordBody(req);
  const { id, record } = await runtime.withModel(req, dsDoc, modelDoc, { write: true }, async (Model) => {
    const { idName, id } = recordId(req, Model);
    const data = checkTypes(sameId(body, idName, id), Model);
    const current = await Model.findById(id);
    if (!current) throw missing(id);
    const written = await write(Model, current, id, data, dsDoc);
    return { id, record: await reread(Model, id, written) };
  });
  await recordChange(req, dsDoc, modelDoc, 'update', id, record);
  return { body: record };
}

function replaceRecord(req) {
  return updateRecord(req, (Model, current, id, data, dsDoc) => {
    if (connectors.spec(dsDoc.connector).replaceNeedsRev && data._rev === undefined) data._rev = current._rev;
    return Model.replaceById(id, data);
  });
}

function patchRecord(req) {
  return updateRecord(req, (Model, current, id, data) => current.patchAttributes(data));
}

// CouchDB keeps what a deleting write holds in the tombstone: naming the model there tells the
// changes feed whose record went (a plain DELETE leaves an anonymous tombstone).
async function deleteNamingTheModel(Model, ds, id) {
  const current = await Model.findById(id);
  if (!current) throw missing(id);
  const target = ds.connector.selectModel(Model.modelName);
  const tombstone = { _id: String(id), _rev: current._rev, _deleted: true };
  tombstone[target.modelView || 'loopback__model__name'] = Model.modelName;
  await new Promise((resolve, reject) => {
    target.db.insert(tombstone, (err) => (err ? reject(err) : resolve()));
  });
}

async function deleteRecord(req) {
  const { modelDoc, dsDoc } = await target(req);
  const id = await runtime.withModel(req, dsDoc, modelDoc, { write: true }, async (Model, ds) => {
    const { id } = recordId(req, Model);
    if (ownChangesFeed(dsDoc)) {
      await deleteNamingTheModel(Model, ds, id);
      return id;
    }
    const { count } = await Model.destroyById(id);
    if (!count) throw missing(id);
    return id;
  });
  await recordChange(req, dsDoc, modelDoc, 'delete', id, null);
  return { body: { id, deleted: true } };
}

module.exports = {
  operations: { createRecord, findRecords, findRecordById, countRecords, replaceRecord, patchRecord, deleteRecord },
};
