'use strict';
// Live juggler DataSources and models for registry documents, kept while the container is warm:
// one DataSource (one connection pool) per datasource, keyed by the document's _rev so that an
// updated datasource (a new password) is used at once and the superseded pool is closed.
const connectors = require('./connectors');
const registry = require('./registry');
const { httpError } = require('./errors');
const { secretsOf, scrubber } = require('./secrets');

const sources = new Map(); // datasource doc id -> {rev, ds, models: Map(model doc id -> {rev, Model})}
const MEMORY_LIMIT_BYTES = 1024 * 1024;
const MEMORY_RETRIES = 5;

let juggler = null;
function DataSource() {
  if (juggler === null) juggler = require('loopback-datasource-juggler');
  return juggler.DataSource;
}

function dispose(entry) {
  if (!entry) return;
  entry.ds.disconnect().catch(() => {});
}

function withTimeout(promise, ms) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function connectFailure(doc, err) {
  let reason = (err && err.message) || String(err);
  if (doc.connector === 'couchdb' && err && err.statusCode === 404) {
    reason = `the database '${doc.settings.database}' does not exist`;
  }
  return httpError(502, `cannot reach the datasource: ${reason}`);
}

function create(doc) {
  const spec = connectors.spec(doc.connector);
  const scrub = scrubber(secretsOf(doc.settings));
  const log = (err) => console.error(`datasource ${doc.name}: ${scrub((err && err.message) || err)}`);
  const settings = { ...spec.juggler(doc.settings), connector: connectors.load(doc.connector), lazyConnect: true };
  for (const key of Object.keys(settings)) if (settings[key] === undefined) delete settings[key];
  const DS = DataSource();
  const ds = new DS(settings);
  // without a listener an unreachable database's 'error' event would crash the container
  ds.on('error', log);
  if (spec.guard) spec.guard(ds, log);
  return { rev: doc._rev, ds, models: new Map() };
}

// A connected DataSource for a datasource document (the caller's own, read from the registry).
async function dataSource(req, doc) {
  req.secrets.push(...secretsOf(doc.settings));
  let entry = sources.get(doc._id);
  if (entry && entry.rev !== doc._rev) {
    sources.delete(doc._id);
    dispose(entry);
    entry = undefined;
  }
  if (!entry) {
    entry = create(doc);
    sources.set(doc._id, entry);
  }
  if (!entry.ds.connected) {
    const ms = (doc.settings.connectTimeout || connectors.DEFAULT_CONNECT_TIMEOUT_MS) + 1000;
    try {
      await withTimeout(entry.ds.connect(), ms);
    } catch (err) {
      sources.delete(doc._id);
      dispose(entry);
      throw connectFailure(doc, err);
    }
  }
  return entry;
}

function forget(doc) {
  const entry = sources.get(doc._id);
  sources.delete(doc._id);
  dispose(entry);
}

// The name juggler knows a model by. CouchDB tags each document with it, so there it is the
// collection's name; elsewhere the table is mapped explicitly and the model's name reads best in
// juggler's messages.
const jugglerName = (dsDoc, modelDoc) => (dsDoc.connector === 'couchdb' ? modelDoc.table || modelDoc.name : modelDoc.name);

function tableOf(dsDoc, modelDoc) {
  const spec = connectors.spec(dsDoc.connector);
  return modelDoc.table || (spec.defaultTable ? spec.defaultTable(modelDoc.name) : modelDoc.name);
}

// juggler's model settings for a model document on its datasource.
function modelSettings(dsDoc, modelDoc) {
  const spec = connectors.spec(dsDoc.connector);
  const options = { ...modelDoc.options };
  if (options.strict === undefined) options.strict = Boolean(spec.sql); // SQL tables have a fixed set of columns
  if (spec.modelOptions) Object.assign(options, spec.modelOptions(dsDoc.settings, tableOf(dsDoc, modelDoc)));
  // a memory datasource keeps one collection per model document, whatever its name
  if (dsDoc.connector === 'memory') options.memory = { collection: modelDoc._id };
  return options;
}

function defineModel(entry, dsDoc, modelDoc) {
  const name = jugglerName(dsDoc, modelDoc);
  const cached = entry.models.get(modelDoc._id);
  // another model of the same name may have been defined on this DataSource since
  const current = cached && modelDoc._rev !== undefined && cached.rev === modelDoc._rev;
  if (current && entry.ds.models[name] === cached.Model) return cached.Model;
  // juggler adds to the definitions it is given (e.g. an injected id): give it copies
  const Model = entry.ds.createModel(name, structuredClone(modelDoc.properties), modelSettings(dsDoc, modelDoc));
  entry.models.set(modelDoc._id, { rev: modelDoc._rev, Model });
  return Model;
}

// A memory datasource's data lives in the registry, so that every container sees the same
// records: load it into the connector, run `work`, and write it back when `write` (retrying the
// whole step when another activation wrote in between).
async function withMemoryData(req, dsDoc, entry, write, work) {
  const connector = entry.ds.connector;
  const id = registry.publicId(dsDoc);
  for (let attempt = 1; ; attempt++) {
    const stored = (await registry.get('memory', req.tenant, id)) || { _id: registry.docId(req.tenant, id) };
    connector.cache = stored.models || {};
    connector.ids = stored.ids || {};
    for (const name of Object.keys(connector._models)) {
      if (!connector.collection(name)) connector.initCollection(name);
    }
    const result = await work();
    if (!write) return result;
    const next = { ...stored, tenant: req.tenant, datasourceId: id, ids: connector.ids, models: connector.cache };
    if (Buffer.byteLength(JSON.stringify(next)) > MEMORY_LIMIT_BYTES) {
      throw httpError(400, `a memory datasource holds at most ${MEMORY_LIMIT_BYTES / 1024} KiB of data; use a database connector`);
    }
    try {
      await registry.put('memory', next);
      return result;
    } catch (err) {
      if (err.statusCode !== 409 || attempt >= MEMORY_RETRIES) throw err;
    }
  }
}

// Runs work(Model, ds) on the live model of a model document.
async function withModel(req, dsDoc, modelDoc, { write = false } = {}, work) {
  const entry = await dataSource(req, dsDoc);
  const Model = defineModel(entry, dsDoc, modelDoc);
  const run = () => work(Model, entry.ds);
  return dsDoc.connector === 'memory' ? withMemoryData(req, dsDoc, entry, write, run) : run();
}

async function dropMemoryData(tenant, dsDoc) {
  const stored = await registry.get('memory', tenant, registry.publicId(dsDoc));
  if (stored) await registry.remove('memory', stored);
}

module.exports = { withTimeout, dataSource, forget, withModel, tableOf, dropMemoryData };
