'use strict';
// pywhisk's messaging catalog package: mqttPublish sends one message to an MQTT broker (the
// `mqtt` module comes preinstalled in the Node.js runtime image).
//
// params: url (mqtt:// or mqtts://), topic (no wildcards), message (text, or any JSON value sent
// JSON-encoded; without it, the other parameters as a JSON object: a rule's trigger event), qos (0|1|2, default 1), retain, username, password, clientId.
// returns {published: true, topic, bytes}; failures are {error: "..."} (application errors).

const CONNECT_TIMEOUT_MS = 5000;
const TOTAL_TIMEOUT_MS = 15000;

function fail(message) {
  const err = new Error(message);
  err.expose = true;
  return err;
}

function brokerUrl(value) {
  let url = null;
  try {
    url = typeof value === 'string' ? new URL(value) : null;
  } catch (_) {
    url = null;
  }
  if (url === null || !['mqtt:', 'mqtts:'].includes(url.protocol) || !url.hostname) {
    throw fail("'url' must be an mqtt:// or mqtts:// URL");
  }
  return url;
}

function checkInput(params) {
  const url = brokerUrl(params.url);
  const { topic } = params;
  if (typeof topic !== 'string' || topic === '' || Buffer.byteLength(topic) > 65535) throw fail("'topic' must be a non-empty string");
  if (/[+#\u0000]/.test(topic)) throw fail("'topic' may not contain the wildcards + and # (or NUL)");
  const message = params.message === undefined ? eventOf(params) : params.message;
  if (message === undefined) throw fail("'message' is required");
  const qos = params.qos === undefined ? 1 : Number(params.qos);
  if (![0, 1, 2].includes(qos)) throw fail("'qos' must be 0, 1 or 2");
  if (params.retain !== undefined && typeof params.retain !== 'boolean') throw fail("'retain' must be true or false");
  for (const key of ['username', 'password', 'clientId']) {
    if (params[key] !== undefined && typeof params[key] !== 'string') throw fail(`'${key}' must be a string`);
  }
  const hasUser = params.username !== undefined || url.username !== '';
  if ((params.password !== undefined || url.password !== '') && !hasUser) throw fail("a 'password' needs a 'username'");
  const payload = typeof message === 'string' ? message : JSON.stringify(message);
  return { url, topic, qos, retain: params.retain === true, payload };
}

// Without a `message`, what else the action got is the message: the event of the trigger a rule
// connects to it (a model's change, say), less this action's own settings.
const SETTINGS = new Set(['url', 'topic', 'qos', 'retain', 'username', 'password', 'clientId']);
function eventOf(params) {
  const event = {};
  for (const [key, value] of Object.entries(params)) {
    if (!SETTINGS.has(key) && !key.startsWith('__ow_')) event[key] = value;
  }
  return Object.keys(event).length > 0 ? event : undefined;
}

// Connects, publishes, waits for the broker's acknowledgement (qos >= 1) and disconnects.
function publish({ url, topic, qos, retain, payload }, params) {
  const mqtt = require('mqtt');
  const options = {
    connectTimeout: CONNECT_TIMEOUT_MS,
    reconnectPeriod: 0, // one attempt: an action must not retry forever
    clean: true,
  };
  // credentials travel as options, never in the URL (so that no message can carry them)
  const username = params.username !== undefined ? params.username : decodeURIComponent(url.username);
  const password = params.password !== undefined ? params.password : decodeURIComponent(url.password);
  if (username) options.username = username;
  if (password) options.password = password;
  if (params.clientId) options.clientId = params.clientId;
  const target = `${url.protocol}//${url.hostname}${url.port ? `:${url.port}` : ''}`;
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(target, options);
    let settled = false;
    const finish = (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // after a publish, end gracefully so that a qos 0 message is flushed before DISCONNECT
      client.end(Boolean(err), () => (err ? reject(err) : resolve()));
    };
    const timer = setTimeout(() => finish(fail(`cannot reach the MQTT broker at ${target}: no answer within ${TOTAL_TIMEOUT_MS} ms`)), TOTAL_TIMEOUT_MS);
    client.on('error', (err) => {
      const reason = err && err.message ? err.message : String(err);
      finish(fail(`cannot reach the MQTT broker at ${target}: ${reason}`));
    });
    // 'error' (with the reason) comes before 'close' when there is one
    client.on('close', () => setImmediate(() => finish(fail(`cannot reach the MQTT broker at ${target}: connection closed`))));
    client.on('connect', () => {
      client.publish(topic, payload, { qos, retain }, (err) => {
        if (err) finish(fail(`the MQTT broker at ${target} refused the message: ${err.message}`));
        else finish(null);
      });
    });
  });
}

function scrub(text, params) {
  let out = String(text).replace(/([a-z][a-z0-9+.-]*:\/\/)([^\s/@:]*):([^\s/@]*)@/gi, '$1$2@');
  const secrets = [params.password];
  try {
    secrets.push(decodeURIComponent(new URL(params.url).password));
  } catch (_) {
    // not a URL: nothing more to hide
  }
  for (const secret of secrets) {
    if (typeof secret === 'string' && secret) out = out.split(secret).join('***');
  }
  return out;
}

async function mqttPublish(params) {
  const input = params && typeof params === 'object' ? params : {};
  try {
    const checked = checkInput(input);
    await publish(checked, input);
    return { published: true, topic: checked.topic, bytes: Buffer.byteLength(checked.payload) };
  } catch (err) {
    if (!err.expose) console.error(`mqttPublish: unexpected error: ${scrub(err.stack || err, input)}`);
    return { error: scrub(err.expose ? err.message : 'internal error in mqttPublish', input) };
  }
}

module.exports = { mqttPublish };
