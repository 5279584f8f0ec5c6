'use strict';
// Errors that carry the HTTP status they answer with, and the mapping of what juggler and the
// connectors throw onto those statuses.

function httpError(statusCode, message) {
  const err = new Error(message);
  err.statusCode = statusCode;
  err.expose = true; // the message is meant for the caller (after scrubbing)
  return err;
}

const isHttpError = (err) => Boolean(err && err.expose === true && Number.isInteger(err.statusCode));

// SQLSTATE classes (PostgreSQL) and MySQL/MariaDB codes that are the caller's fault.
const PG_BAD_INPUT = /^(22|23502|23514|42703)/; // data exceptions, not null, check, undefined column
const PG_CONFLICT = /^(23505|23503|23P01)/; // unique, foreign key, exclusion
const MYSQL_BAD_INPUT = new Set([
  'ER_BAD_NULL_ERROR', 'ER_NO_DEFAULT_FOR_FIELD', 'ER_TRUNCATED_WRONG_VALUE', 'ER_DATA_TOO_LONG',
  'ER_WARN_DATA_OUT_OF_RANGE', 'ER_TRUNCATED_WRONG_VALUE_FOR_FIELD', 'ER_BAD_FIELD_ERROR',
  'ER_CHECK_CONSTRAINT_VIOLATED', 'ER_INVALID_JSON_TEXT',
]);
const MYSQL_CONFLICT = new Set(['ER_DUP_ENTRY', 'ER_NO_REFERENCED_ROW_2', 'ER_ROW_IS_REFERENCED_2']);

// Turns an error from juggler or a connector into an httpError. Database-side failures that are
// not the caller's fault become 502: the tenant's database, not this service, failed.
function fromDatasource(err) {
  if (isHttpError(err)) return err;
  const message = (err && err.message) || String(err);
  if (err && err.name === 'ValidationError') return httpError(400, message);
  const code = err && typeof err.code === 'string' ? err.code : '';
  const sqlState = err && typeof err.sqlState === 'string' ? err.sqlState : '';
  if (/^[0-9A-Z]{5}$/.test(code) && !code.startsWith('E')) {
    if (PG_CONFLICT.test(code)) return httpError(409, message);
    if (PG_BAD_INPUT.test(code)) return httpError(400, message);
    return httpError(502, `the datasource failed: ${message}`);
  }
  if (code.startsWith('ER_') || sqlState) {
    if (MYSQL_CONFLICT.has(code)) return httpError(409, message);
    if (MYSQL_BAD_INPUT.has(code)) return httpError(400, message);
    return httpError(502, `the datasource failed: ${message}`);
  }
  if (/^(E[A-Z]+|ETIMEDOUT|PROTOCOL_)/.test(code) || (err && err.errno && !err.statusCode)) {
    return httpError(502, `cannot reach the datasource: ${message}`);
  }
  const status = err && (err.statusCode || err.status);
  if (status === 409) return httpError(409, message);
  if (status === 404) return httpError(404, message);
  if (status === 400 || status === 422) return httpError(400, message);
  if (Number.isInteger(status) && status >= 400 && status < 600) {
    // an HTTP-speaking database (CouchDB) answered with an error of its own
    return httpError(502, `the datasource failed: ${message}`);
  }
  // what a driver throws without a code (e.g. "Connection terminated unexpectedly") is the
  // database's failure; programming errors stay bugs
  const bug = [TypeError, ReferenceError, SyntaxError, RangeError].some((type) => err instanceof type);
  if (err instanceof Error && !bug) return httpError(502, `the datasource failed: ${message}`);
  return null; // unexpected: the caller treats it as a bug
}

module.exports = { httpError, isHttpError, fromDatasource };
