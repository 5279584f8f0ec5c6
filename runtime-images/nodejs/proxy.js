#!/usr/bin/env node
// pywhisk action runtime proxy for Node.js actions (Node 18, 20, 22; builtin modules only).
//
// Speaks OpenWhisk's action container protocol (POST /init, POST /run) over HTTP/1.1 on a TCP
// port or a Unix socket:
//
//     node proxy.js [--port N | --socket PATH]      (default: TCP 0.0.0.0:8080)
//
// Requests are served one at a time, in arrival order.
'use strict';

const fs = require('fs');
const http = require('http');
const Module = require('module');
const os = require('os');
const path = require('path');
const { pathToFileURL } = require('url');
const zlib = require('zlib');

const SENTINEL = 'XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX\n';
const DEFAULT_PORT = 8080;
const MAX_BODY = 64 * 1024 * 1024;
const KEEP_ALIVE_MS = 10 * 60 * 1000;
const MAIN_KEY = Symbol.for('pywhisk.proxy.main');
const ENTRY_NAME = /^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$/;
const NOT_A_DICT = 'The action did not return a dictionary or array.';

class InitError extends Error {}

let state = 'new'; // new -> ready | failed; never back
let actionMain = null;
let failInFlight = null; // fails the activation in progress when the action crashes asynchronously

// ------------------------------------------------------------------------------- helpers

function isPlainObject(value) {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function describe(err) {
  if (err instanceof Error) return err.message ? `${err.name}: ${err.message}` : err.name;
  return String(err);
}

function messageOf(err) {
  if (err instanceof Error) return err.message || err.name;
  if (isPlainObject(err) && typeof err.message === 'string') return err.message;
  try {
    return typeof err === 'string' ? err : String(err);
  } catch (_) {
    return Object.prototype.toString.call(err);
  }
}

function logError(prefix, err) {
  const text = err instanceof Error && err.stack ? err.stack : messageOf(err);
  process.stderr.write(`${prefix}${text}\n`);
}

function envValue(value) {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function writeWhenFlushed(stream, text) {
  return new Promise((resolve) => {
    try {
      stream.write(text, () => resolve());
    } catch (_) {
      resolve();
    }
  });
}

// Both streams are written through the same Writable objects the action's console uses, so the
// sentinel lands after everything the action wrote; the reply waits for both writes to complete.
function endActivation() {
  return Promise.all([writeWhenFlushed(process.stdout, SENTINEL), writeWhenFlushed(process.stderr, SENTINEL)]);
}

function pick(target, dotted) {
  let value = target;
  for (const part of dotted.split('.')) {
    if (value === null || value === undefined) return undefined;
    value = value[part];
  }
  return value;
}

// The entry point from what a module exported: exports[main], then an ES module's default
// export, then the export itself when it is a function (module.exports = fn).
function entryFrom(exported, mainName) {
  if (exported === null || exported === undefined) return undefined;
  let found = pick(exported, mainName);
  if (found === undefined && exported.default !== undefined && exported.default !== null) {
    found = pick(exported.default, mainName);
    if (found === undefined && typeof exported.default === 'function') found = exported.default;
  }
  if (found === undefined && typeof exported === 'function') found = exported;
  return found;
}

function checkEntry(found, mainName) {
  if (found === undefined) throw new InitError(`The action has no function named '${mainName}'.`);
  if (typeof found !== 'function') throw new InitError(`Action entrypoint '${mainName}' is not a function.`);
  return found;
}

// ------------------------------------------------------------------------------- loading

function loadSource(code, mainName) {
  const filename = path.join(__dirname, 'main__.js');
  const mod = new Module(filename, null);
  mod.filename = filename;
  mod.paths = Module._nodeModulePaths(__dirname);
  const originalExports = mod.exports;
  // A top-level `function main` is only visible inside the module's scope, so the code gets
  // a trailing resolver. The typeof guard keeps it harmless if Node loads the code as ESM.
  const trailer =
    `\n;if (typeof module !== 'undefined') module[Symbol.for('pywhisk.proxy.main')] = ` +
    `function () { try { return ${mainName}; } catch (e) { return undefined; } };\n`;
  try {
    mod._compile(code + trailer, filename);
  } catch (err) {
    throw Object.assign(new InitError(`Initialization has failed due to: ${describe(err)}`), { cause: err });
  }
  mod.loaded = true;
  let found = typeof mod[MAIN_KEY] === 'function' ? mod[MAIN_KEY]() : undefined;
  if (found === undefined) found = entryFrom(mod.exports, mainName);
  if (found === undefined && mod.exports !== originalExports) found = entryFrom(originalExports, mainName);
  return checkEntry(found, mainName);
}

function safeTarget(root, name) {
  const clean = name.replace(/\\/g, '/');
  if (clean.startsWith('/') || clean.split('/').includes('..')) throw new Error(`unsafe path in archive: ${name}`);
  const target = path.resolve(root, clean);
  if (target !== root && !target.startsWith(root + path.sep)) throw new Error(`unsafe path in archive: ${name}`);
  return target;
}

function readZip64Extra(extra, fields) {
  // fields: the central directory values that were 0xffffffff, in the order the spec lists them.
  let p = 0;
  while (p + 4 <= extra.length) {
    const id = extra.readUInt16LE(p);
    const size = extra.readUInt16LE(p + 2);
    if (id === 0x0001) {
      let q = p + 4;
      const out = {};
      for (const field of fields) {
        out[field] = Number(extra.readBigUInt64LE(q));
        q += 8;
      }
      return out;
    }
    p += 4 + size;
  }
  throw new Error('missing zip64 extra field');
}

// Minimal zip reader: central directory, stored (0) and deflated (8) entries, zip64 sizes.
function extractZip(buf, root) {
  let eocd = -1;
  for (let p = buf.length - 22; p >= Math.max(0, buf.length - 22 - 0xffff); p--) {
    if (buf.readUInt32LE(p) === 0x06054b50) {
      eocd = p;
      break;
    }
  }
  if (eocd < 0) throw new Error('not a zip file (no end of central directory)');
  let count = buf.readUInt16LE(eocd + 10);
  let offset = buf.readUInt32LE(eocd + 16);
  if ((count === 0xffff || offset === 0xffffffff) && eocd >= 20 && buf.readUInt32LE(eocd - 20) === 0x07064b50) {
    const z = Number(buf.readBigUInt64LE(eocd - 20 + 8));
    if (buf.readUInt32LE(z) !== 0x06064b50) throw new Error('bad zip64 end of central directory');
    count = Number(buf.readBigUInt64LE(z + 32));
    offset = Number(buf.readBigUInt64LE(z + 48));
  }
  let p = offset;
  for (let i = 0; i < count; i++) {
    if (buf.readUInt32LE(p) !== 0x02014b50) throw new Error('corrupt central directory');
    const madeBy = buf.readUInt16LE(p + 4) >> 8;
    const flags = buf.readUInt16LE(p + 8);
    const method = buf.readUInt16LE(p + 10);
    let csize = buf.readUInt32LE(p + 20);
    let usize = buf.readUInt32LE(p + 24);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    const attrs = buf.readUInt32LE(p + 38);
    let local = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    const extra = buf.subarray(p + 46 + nameLen, p + 46 + nameLen + extraLen);
    p += 46 + nameLen + extraLen + commentLen;

    const wide = [];
    if (usize === 0xffffffff) wide.push('usize');
    if (csize === 0xffffffff) wide.push('csize');
    if (local === 0xffffffff) wide.push('local');
    if (wide.length) {
      const wider = readZip64Extra(extra, wide);
      if (wider.usize !== undefined) usize = wider.usize;
      if (wider.csize !== undefined) csize = wider.csize;
      if (wider.local !== undefined) local = wider.local;
    }

    if (flags & 1) throw new Error(`encrypted entry ${name}`);
    const target = safeTarget(root, name);
    if (name.endsWith('/')) {
      fs.mkdirSync(target, { recursive: true });
      continue;
    }
    if (buf.readUInt32LE(local) !== 0x04034b50) throw new Error(`corrupt local header for ${name}`);
    const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    const raw = buf.subarray(start, start + csize);
    if (raw.length !== csize) throw new Error(`truncated entry ${name}`);
    let data;
    if (method === 0) data = raw;
    else if (method === 8) data = zlib.inflateRawSync(raw);
    else throw new Error(`unsupported compression method ${method} for ${name}`);
    if (data.length !== usize) throw new Error(`size mismatch for ${name}`);

    fs.mkdirSync(path.dirname(target), { recursive: true });
    const mode = madeBy === 3 ? attrs >>> 16 : 0; // 3 = Unix: high bits hold st_mode
    if ((mode & 0o170000) === 0o120000) {
      const link = data.toString('utf8');
      const resolved = path.resolve(path.dirname(target), link);
      if (!path.isAbsolute(link) && resolved.startsWith(root + path.sep)) fs.symlinkSync(link, target);
      continue;
    }
    fs.writeFileSync(target, data, { mode: mode & 0o777 || 0o644 });
  }
}

async function loadArchive(code, mainName) {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'action-')));
  try {
    extractZip(Buffer.from(code, 'base64'), dir);
  } catch (err) {
    throw new InitError(`Invalid action archive: ${err.message}`);
  }
  let entry;
  try {
    entry = require.resolve(dir); // package.json "main", else index.js
  } catch (err) {
    throw new InitError('Zipped actions must contain either package.json with a valid "main" or index.js at the root.');
  }
  process.chdir(dir);
  let exported;
  try {
    try {
      exported = require(entry);
    } catch (err) {
      if (!err || (err.code !== 'ERR_REQUIRE_ESM' && err.code !== 'ERR_REQUIRE_ASYNC_MODULE')) throw err;
      exported = await import(pathToFileURL(entry).href);
    }
  } catch (err) {
    throw Object.assign(new InitError(`Initialization has failed due to: ${describe(err)}`), { cause: err });
  }
  return checkEntry(entryFrom(exported, mainName), mainName);
}

// ------------------------------------------------------------------------------- protocol

async function init(payload) {
  if (state !== 'new') return [403, { error: 'Cannot initialize the action more than once.' }];
  const value = isPlainObject(payload.value) ? payload.value : {};
  const code = value.code;
  if (typeof code !== 'string' || code.trim() === '') return [403, { error: 'Missing main/no code to execute.' }];
  const mainName = typeof value.main === 'string' && value.main ? value.main : 'main';

  state = 'failed'; // whatever happens next, a second /init is refused
  try {
    if (!ENTRY_NAME.test(mainName)) throw new InitError(`Invalid entrypoint name '${mainName}'.`);
    if (isPlainObject(value.env)) {
      for (const [key, val] of Object.entries(value.env)) {
        if (val !== null && val !== undefined) process.env[key] = envValue(val);
      }
    }
    actionMain = value.binary === true ? await loadArchive(code, mainName) : loadSource(code, mainName);
  } catch (err) {
    if (err instanceof InitError && err.cause !== undefined) logError('Initialization failed: ', err.cause);
    else logError('Initialization failed: ', err instanceof InitError ? err.message : err);
    await endActivation();
    const message = err instanceof InitError ? err.message : `Initialization has failed due to: ${describe(err)}`;
    return [502, { error: message }];
  }
  state = 'ready';
  return [200, { ok: true }];
}

function rejectionValue(reason) {
  if (reason === undefined || reason === null) return {};
  if (isPlainObject(reason)) return reason;
  return messageOf(reason);
}

async function invoke(value) {
  let result;
  try {
    result = actionMain(value);
  } catch (err) {
    logError('', err);
    return [502, { error: `An error has occurred: ${messageOf(err)}` }];
  }
  let thenable = false;
  try {
    thenable = result !== null && typeof result === 'object' && typeof result.then === 'function';
    thenable = thenable || (typeof result === 'function' && typeof result.then === 'function');
  } catch (_) {
    thenable = false;
  }
  if (thenable) {
    const crashed = {};
    try {
      result = await new Promise((resolve, reject) => {
        failInFlight = (err) => reject(Object.assign(crashed, { err }));
        Promise.resolve(result).then(resolve, reject);
      });
    } catch (reason) {
      if (reason === crashed) return [502, { error: `An error has occurred: ${messageOf(crashed.err)}` }];
      if (reason instanceof Error) logError('', reason);
      return [200, { error: rejectionValue(reason) }];
    } finally {
      failInFlight = null;
    }
  }
  if (result === null || typeof result !== 'object') return [502, { error: NOT_A_DICT }];
  let text;
  try {
    text = JSON.stringify(result);
  } catch (err) {
    logError('Result is not JSON serializable: ', err);
    return [502, { error: `The action returned a result that is not JSON serializable: ${messageOf(err)}` }];
  }
  if (typeof text !== 'string' || (text[0] !== '{' && text[0] !== '[')) return [502, { error: NOT_A_DICT }];
  return [200, text];
}

async function run(payload) {
  if (state !== 'ready') return [403, { error: 'Cannot run before the action is initialized.' }];
  for (const [key, val] of Object.entries(payload)) {
    if (key === 'value') continue;
    const name = `__OW_${key.toUpperCase()}`;
    if (val === null || val === undefined) delete process.env[name];
    else process.env[name] = envValue(val);
  }
  try {
    return await invoke('value' in payload ? payload.value : {});
  } finally {
    await endActivation();
  }
}

process.on('uncaughtException', (err) => {
  logError('Uncaught exception: ', err);
  if (failInFlight) failInFlight(err);
});
process.on('unhandledRejection', (reason) => {
  logError('Unhandled promise rejection: ', reason);
});

// ------------------------------------------------------------------------------- HTTP

function send(res, status, body, headers) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

let queue = Promise.resolve();

function handle(req, res) {
  const pathname = req.url.split('?')[0];
  const route = pathname === '/init' ? init : pathname === '/run' ? run : null;
  if (route === null) return send(res, 404, { error: `The requested resource ${pathname} does not exist.` });
  if (req.method !== 'POST') {
    return send(res, 405, { error: `Method ${req.method} is not allowed on ${pathname}.` }, { Allow: 'POST' });
  }
  const chunks = [];
  let size = 0;
  let tooLarge = false;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY) tooLarge = true;
    else chunks.push(chunk);
  });
  req.on('error', () => {});
  req.on('end', () => {
    if (tooLarge) return send(res, 413, { error: 'Request body too large' }, { Connection: 'close' });
    let payload;
    try {
      payload = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch (err) {
      return send(res, 400, { error: `The request body is not valid JSON: ${err.message}` });
    }
    if (!isPlainObject(payload)) return send(res, 400, { error: 'The request body must be a JSON object.' });
    const job = queue.then(() => route(payload));
    queue = job.catch(() => {});
    job.then(
      ([status, body]) => send(res, status, body),
      (err) => {
        logError('Internal proxy error: ', err);
        send(res, 500, { error: `Internal proxy error: ${describe(err)}` });
      },
    );
  });
}

// ------------------------------------------------------------------------------- command line

const USAGE = 'usage: proxy.js [--port N | --socket PATH]';

function fail(message) {
  process.stderr.write(`${USAGE}\n${message}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  let port = DEFAULT_PORT;
  let socketPath = null;
  const args = argv.slice();
  while (args.length) {
    const arg = args.shift();
    const eq = arg.indexOf('=');
    const name = eq < 0 ? arg : arg.slice(0, eq);
    if (name === '-h' || name === '--help') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    }
    if (name !== '--port' && name !== '--socket') fail(`unknown argument: ${arg}`);
    let val = eq < 0 ? args.shift() : arg.slice(eq + 1);
    if (val === undefined) fail(`${name} needs a value`);
    if (name === '--socket') socketPath = val;
    else {
      port = Number(val);
      if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`invalid port: ${val}`);
    }
  }
  return { port, socketPath };
}

function main() {
  const { port, socketPath } = parseArgs(process.argv.slice(2));
  const server = http.createServer({ noDelay: true }, handle);
  server.keepAliveTimeout = KEEP_ALIVE_MS;
  server.headersTimeout = KEEP_ALIVE_MS + 1000;
  server.requestTimeout = 0; // an activation may legitimately run for many minutes
  server.timeout = 0;
  server.on('error', (err) => {
    process.stderr.write(`proxy: cannot listen on ${socketPath || port}: ${err.message}\n`);
    process.exit(1);
  });
  if (socketPath) {
    try {
      if (fs.statSync(socketPath).isSocket()) fs.unlinkSync(socketPath); // stale socket from an earlier run
    } catch (_) {
      // absent: nothing to clean up
    }
    server.listen(socketPath);
  } else {
    server.listen(port, '0.0.0.0');
  }
}

main();
