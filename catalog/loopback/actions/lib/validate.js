'use strict';
// Validation of what callers send: datasource settings, model definitions, filters. Messages
// name the offending key, never its value (a value may be a secret).
const { httpError } = require('./errors');
const connectors = require('./connectors');
const { isPlainObject } = require('./request');

const bad = (message) => httpError(400, message);
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const PROPERTY_NAME = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
// names that would shadow what every JavaScript object has (juggler keeps models and values in
// plain objects): never a model, property or record key
const isReserved = (key) => key in Object.prototype || key === 'prototype';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TABLE = /^[^\u0000-\u001f"`\\]{1,128}$/;
const MAX_LIMIT = 1000;

function requireObject(value, what) {
  if (!isPlainObject(value)) throw bad(`${what} must be a JSON object`);
  return value;
}

// Direct invocations may pass objects as JSON strings (`-p settings '{...}'` from some clients).
function jsonValue(value, what) {
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value);
  } catch (_) {
    throw bad(`${what} is not valid JSON`);
  }
}

function onlyKeys(object, allowed, what) {
  for (const key of Object.keys(object)) {
    if (!allowed.includes(key)) throw bad(`unknown ${what} '${key}'; allowed: ${allowed.join(', ')}`);
  }
}

// Public ids are uuids; anything else cannot name a document, so it is simply not found.
function isId(value) {
  return typeof value === 'string' && UUID.test(value);
}

function name(value, what, { required = true, max = 128 } = {}) {
  if (value === undefined && !required) return undefined;
  if (typeof value !== 'string' || value.trim() === '' || value.length > max) {
    throw bad(`${what} must be a non-empty string of at most ${max} characters`);
  }
  return value;
}

function connectorName(value) {
  if (typeof value !== 'string' || !connectors.spec(value)) {
    const shown = typeof value === 'string' ? value.slice(0, 64) : String(value);
    throw bad(`unknown connector '${shown}'; one of: ${connectors.NAMES.join(', ')}`);
  }
  return value;
}

function checkSetting(key, kind, value) {
  const wrong = (expected) => bad(`setting '${key}' must be ${expected}`);
  if (kind === 'string') {
    if (typeof value !== 'string' || value.length > 1024) throw wrong('a string');
  } else if (kind === 'port') {
    if (!Number.isInteger(value) || value < 1 || value > 65535) throw wrong('an integer from 1 to 65535');
  } else if (kind === 'boolean') {
    if (typeof value !== 'boolean') throw wrong('true or false');
  } else if (kind === 'timeout') {
    if (!Number.isInteger(value) || value < 100 || value > 60000) throw wrong('an integer of milliseconds from 100 to 60000');
  } else if (kind.startsWith('url:')) {
    const protocols = kind.slice(4).split(',');
    let url = null;
    try {
      url = typeof value === 'string' && value.length <= 2048 ? new URL(value) : null;
    } catch (_) {
      url = null;
    }
    if (url === null || !protocols.includes(url.protocol) || !url.hostname) {
      throw wrong(`a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`);
    }
  }
}

// The settings of a datasource for its connector: known keys of the right types only.
function settings(connector, value) {
  const spec = connectors.spec(connector);
  const given = value === undefined || value === null ? {} : requireObject(jsonValue(value, 'settings'), 'settings');
  const out = {};
  for (const [key, setting] of Object.entries(given)) {
    if (!Object.prototype.hasOwnProperty.call(spec.settings, key)) {
      const allowed = Object.keys(spec.settings);
      const hint = allowed.length ? `; allowed: ${allowed.join(', ')}` : ` (connector '${connector}' takes none)`;
      throw bad(`unknown setting '${String(key).slice(0, 64)}' for connector '${connector}'${hint}`);
    }
    if (setting === null || setting === undefined) continue;
    checkSetting(key, spec.settings[key], setting);
    out[key] = setting;
  }
  const missing = spec.needs ? spec.needs(out) : null;
  if (missing) throw bad(`${missing} for connector '${connector}'`);
  return out;
}

const TYPES = ['String', 'Number', 'Boolean', 'Date', 'Object', 'Array', 'any', 'Buffer', 'GeoPoint'];
const TYPE_BY_LOWER = new Map(TYPES.map((type) => [type.toLowerCase(), type]));
// what discovery and users may put in a property definition besides its type
const PROPERTY_KEYS = [
  'type', 'required', 'id', 'generated', 'length', 'precision', 'scale', 'index', 'default',
  'description', 'jsonSchema', 'postgresql', 'mysql', 'couchdb', 'memory', 'itemType',
];

function typeName(value, where) {
  if (Array.isArray(value)) {
    if (value.length > 1) throw bad(`${where}: an array type names one item type, e.g. ["String"]`);
    return value.length ? [typeName(value[0], where)] : ['any'];
  }
  const type = typeof value === 'string' ? TYPE_BY_LOWER.get(value.toLowerCase()) : undefined;
  if (!type) throw bad(`${where}: unknown type; one of: ${TYPES.join(', ')} (or an array like ["String"])`);
  return type;
}

function property(key, value) {
  const where = `property '${key}'`;
  if (typeof value === 'string' || Array.isArray(value)) return { type: typeName(value, where) };
  if (!isPlainObject(value)) throw bad(`${where} must be a type name or an object with a 'type'`);
  onlyKeys(value, PROPERTY_KEYS, `key in ${where}`);
  const out = { ...value, type: typeName(value.type === undefined ? 'any' : value.type, where) };
  for (const flag of ['required', 'generated', 'index']) {
    if (out[flag] !== undefined && typeof out[flag] !== 'boolean') throw bad(`${where}: '${flag}' must be true or false`);
  }
  if (out.id !== undefined && typeof out.id !== 'boolean' && !(Number.isInteger(out.id) && out.id > 0)) {
    throw bad(`${where}: 'id' must be true or a positive integer`);
  }
  for (const size of ['length', 'precision', 'scale']) {
    if (out[size] !== undefined && out[size] !== null && !(Number.isInteger(out[size]) && out[size] >= 0)) {
      throw bad(`${where}: '${size}' must be a non-negative integer`);
    }
  }
  for (const nested of ['jsonSchema', 'postgresql', 'mysql', 'couchdb', 'memory']) {
    if (out[nested] !== undefined && out[nested] !== null && !isPlainObject(out[nested])) {
      throw bad(`${where}: '${nested}' must be an object`);
    }
  }
  return out;
}

function properties(value) {
  const given = requireObject(jsonValue(value, 'properties'), 'properties');
  const keys = Object.keys(given);
  if (keys.length === 0) throw bad('properties must define at least one property');
  if (keys.length > 200) throw bad('a model has at most 200 properties');
  const out = {};
  for (const key of keys) {
    if (!PROPERTY_NAME.test(key) || key.length > 128) {
      throw bad(`invalid property name '${key.slice(0, 64)}': letters, digits, _ and $, not starting with a digit`);
    }
    if (isReserved(key)) throw bad(`property name '${key}' is reserved`);
    out[key] = property(key, given[key]);
  }
  return out;
}

const MODEL_OPTIONS = { idInjection: 'boolean', forceId: 'boolean', strict: 'strict' };

function modelOptions(value) {
  if (value === undefined || value === null) return {};
  const given = requireObject(jsonValue(value, 'options'), 'options');
  onlyKeys(given, Object.keys(MODEL_OPTIONS), 'model option');
  for (const [key, option] of Object.entries(given)) {
    const ok = typeof option === 'boolean' || (MODEL_OPTIONS[key] === 'strict' && ['filter', 'throw'].includes(option));
    if (!ok) throw bad(`model option '${key}' must be true or false${MODEL_OPTIONS[key] === 'strict' ? " (or 'filter', 'throw')" : ''}`);
  }
  return given;
}

function modelName(value) {
  if (typeof value !== 'string' || !IDENTIFIER.test(value) || value.length > 64) {
    throw bad("model 'name' must be an identifier (letters, digits and _, not starting with a digit, at most 64 characters)");
  }
  if (isReserved(value)) throw bad(`model name '${value}' is reserved`);
  return value;
}

function table(value) {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || !TABLE.test(value)) throw bad("'table' must be a table name of at most 128 characters");
  return value;
}

// --- filters ---------------------------------------------------------------------------------

const FILTER_KEYS = ['where', 'order', 'limit', 'skip', 'offset', 'fields', 'include'];
const ORDER = /^[A-Za-z_$][A-Za-z0-9_$.]*(\s+(ASC|DESC))?$/i;

function invalidFilter(message) {
  return bad(`invalid filter: ${message}`);
}

// where clauses are JSON: plain objects, arrays and scalars, not too deep, no prototype keys.
function checkWhere(value, depth = 0) {
  if (depth > 10) throw invalidFilter("'where' is nested too deeply");
  if (Array.isArray(value)) {
    if (value.length > 500) throw invalidFilter("'where' has an array of more than 500 items");
    value.forEach((item) => checkWhere(item, depth + 1));
  } else if (value !== null && typeof value === 'object') {
    if (!isPlainObject(value)) throw invalidFilter("'where' must be a JSON object");
    for (const [key, item] of Object.entries(value)) {
      if (isReserved(key)) throw invalidFilter(`'where' may not use the key '${key}'`);
      checkWhere(item, depth + 1);
    }
  }
}

function where(value) {
  if (value === undefined || value === null || value === '') return undefined;
  let parsed = value;
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value);
    } catch (_) {
      throw invalidFilter("'where' is not valid JSON");
    }
  }
  if (!isPlainObject(parsed)) throw invalidFilter("'where' must be a JSON object");
  checkWhere(parsed);
  return parsed;
}

// Query strings give numbers as text (bracket style): accept integer text too.
function count(value, key, max) {
  const number = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (!Number.isInteger(number) || number < 0 || (max !== undefined && number > max)) {
    throw invalidFilter(`'${key}' must be an integer from 0${max === undefined ? '' : ` to ${max}`}`);
  }
  return number;
}

function fields(value) {
  if (typeof value === 'string') value = [value];
  if (Array.isArray(value)) {
    if (!value.every((field) => typeof field === 'string' && PROPERTY_NAME.test(field))) {
      throw invalidFilter("'fields' must list property names");
    }
    return value;
  }
  if (isPlainObject(value)) {
    const out = {};
    for (const [key, flag] of Object.entries(value)) {
      const truth = flag === 'true' ? true : flag === 'false' ? false : flag;
      if (!PROPERTY_NAME.test(key) || typeof truth !== 'boolean') {
        throw invalidFilter("'fields' must map property names to true or false");
      }
      out[key] = truth;
    }
    return out;
  }
  throw invalidFilter("'fields' must be an array of property names or an object of booleans");
}

// A LoopBack filter from JSON text or an object (bracket-style query); at most MAX_LIMIT items
// are returned when no limit is given.
function filter(value) {
  let parsed = value === undefined || value === null || value === '' ? {} : value;
  if (typeof parsed === 'string') {
    try {
      parsed = JSON.parse(parsed);
    } catch (_) {
      throw invalidFilter('not valid JSON');
    }
  }
  if (!isPlainObject(parsed)) throw invalidFilter('must be a JSON object');
  for (const key of Object.keys(parsed)) {
    if (!FILTER_KEYS.includes(key)) throw invalidFilter(`unknown key '${key.slice(0, 64)}'; allowed: ${FILTER_KEYS.join(', ')}`);
  }
  const out = {};
  if (parsed.where !== undefined) out.where = where(parsed.where);
  if (parsed.order !== undefined) {
    const order = typeof parsed.order === 'string' ? [parsed.order] : parsed.order;
    if (!Array.isArray(order) || !order.every((item) => typeof item === 'string' && ORDER.test(item.trim()))) {
      throw invalidFilter("'order' must be 'property [ASC|DESC]' or an array of them");
    }
    out.order = order.map((item) => item.trim());
  }
  out.limit = parsed.limit === undefined ? MAX_LIMIT : count(parsed.limit, 'limit', MAX_LIMIT);
  if (parsed.skip !== undefined) out.skip = count(parsed.skip, 'skip');
  if (parsed.offset !== undefined) out.skip = count(parsed.offset, 'offset');
  if (parsed.fields !== undefined) out.fields = fields(parsed.fields);
  // models are defined one by one here, without relations: there is nothing to include
  const include = parsed.include;
  if (include !== undefined && include !== null && !(Array.isArray(include) && include.length === 0)) {
    throw invalidFilter("'include' is not supported: models have no relations");
  }
  return out;
}

module.exports = {
  requireObject, jsonValue, onlyKeys, isId, name, connectorName, settings, properties, modelOptions,
  modelName, table, filter, where, bad, isReserved,
};
