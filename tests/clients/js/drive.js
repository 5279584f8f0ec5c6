// Drives a platform with the official OpenWhisk JavaScript client (npm `openwhisk`, unchanged): actions,
// activations, packages, triggers, rules, feeds and routes. Configured by __OW_API_HOST and __OW_API_KEY, as the
// client itself reads them. Each step asserts what the client hands back; the first failure exits non-zero with
// the step's name. Prints one line per step done.
'use strict';

const assert = require('assert');
const openwhisk = require('openwhisk');

const ow = openwhisk({ apihost: process.env.__OW_API_HOST, api_key: process.env.__OW_API_KEY });
const suffix = process.env.SUFFIX || Math.random().toString(16).slice(2, 10);
const name = (base) => `${base}-${suffix}`;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const ECHO = 'def main(args):\n    return args\n';
const HELLO = "def main(args):\n    print('hello', args.get('name'))\n    return {'greeting': 'Hello ' + args.get('name', 'you')}\n";
const WEB = "def main(args):\n    return {'statusCode': 200, 'body': {'method': args['__ow_method'], 'path': args.get('__ow_path', '')}}\n";

async function eventually(what, check, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    await sleep(250);
  }
  throw new Error(`${what} did not happen within ${timeoutMs} ms${last ? `: ${last.message}` : ''}`);
}

const steps = [];
const step = (title, fn) => steps.push([title, fn]);

const hello = name('hello');
const pkg = name('pkg');
const binding = name('binding');
const trigger = name('trigger');
const rule = name('rule');
const feedTrigger = name('alarm');
const web = name('web');

step('actions.create and get', async () => {
  const created = await ow.actions.create({ name: hello, action: HELLO, kind: 'python:3.11' });
  assert.strictEqual(created.name, hello);
  assert.notStrictEqual(created.namespace, '_');
  const got = await ow.actions.get({ name: hello });
  assert.strictEqual(got.exec.code, HELLO);
  await assert.rejects(ow.actions.create({ name: hello, action: HELLO, kind: 'python:3.11' }),
    (err) => err.statusCode === 409);
  const list = await ow.actions.list();
  assert.ok(list.some((a) => a.name === hello));
});

step('actions.invoke blocking and result', async () => {
  const activation = await ow.actions.invoke({ name: hello, params: { name: 'Ada' }, blocking: true });
  assert.strictEqual(activation.response.success, true);
  assert.deepStrictEqual(activation.response.result, { greeting: 'Hello Ada' });
  const result = await ow.actions.invoke({ name: hello, params: { name: 'Bob' }, blocking: true, result: true });
  assert.deepStrictEqual(result, { greeting: 'Hello Bob' });
});

step('activations.get, logs, result and list', async () => {
  const { activationId } = await ow.actions.invoke({ name: hello, params: { name: 'Cy' } });
  const record = await eventually('the activation record', () => ow.activations.get({ name: activationId }));
  assert.strictEqual(record.activationId, activationId);
  const logs = await ow.activations.logs({ name: activationId });
  assert.ok(logs.logs.some((line) => line.includes('hello Cy')), JSON.stringify(logs));
  const result = await ow.activations.result({ name: activationId });
  assert.deepStrictEqual(result.result, { greeting: 'Hello Cy' });
  const listed = await ow.activations.list({ name: hello, limit: 5 });
  assert.ok(listed.some((a) => a.activationId === activationId));
});

step('packages.create, binding, get and list', async () => {
  await ow.packages.create({ name: pkg, package: { parameters: [{ key: 'from', value: 'package' }] } });
  await ow.actions.create({ name: `${pkg}/echo`, action: ECHO, kind: 'python:3.11' });
  await ow.packages.create({
    name: binding,
    package: { binding: { namespace: '_', name: pkg }, parameters: [{ key: 'from', value: 'binding' }] },
  });
  const result = await ow.actions.invoke({ name: `${binding}/echo`, blocking: true, result: true });
  assert.deepStrictEqual(result, { from: 'binding' });
  const got = await ow.packages.get({ name: pkg });
  assert.deepStrictEqual(got.actions.map((a) => a.name), ['echo']);
  const list = await ow.packages.list();
  assert.ok(list.some((p) => p.name === binding));
  const system = await ow.packages.list({ namespace: 'whisk.system' });
  assert.ok(system.some((p) => p.name === 'utils'));
});

step('triggers and rules: fire, disable, enable', async () => {
  await ow.triggers.create({ name: trigger, trigger: { parameters: [{ key: 'name', value: 'trigger' }] } });
  await ow.rules.create({ name: rule, trigger, action: hello });
  const fired = await ow.triggers.invoke({ name: trigger, params: { name: 'Fired' } });
  const record = await eventually('the trigger activation', () => ow.activations.get({ name: fired.activationId }));
  const entry = JSON.parse(record.logs[0]);
  const run = await eventually('the rule\'s action activation', () => ow.activations.get({ name: entry.activationId }));
  assert.deepStrictEqual(run.response.result, { greeting: 'Hello Fired' });
  await ow.rules.disable({ name: rule });
  const got = await ow.rules.get({ name: rule });
  assert.strictEqual(got.status, 'inactive');
  const quiet = await ow.triggers.invoke({ name: trigger, params: {} });
  assert.ok(!quiet || !quiet.activationId, `a trigger with no active rule gave ${JSON.stringify(quiet)}`);
  await ow.rules.enable({ name: rule });
  assert.strictEqual((await ow.rules.get({ name: rule })).status, 'active');
});

step('feeds.create, get and delete', async () => {
  await ow.triggers.create({ name: feedTrigger });
  const start = new Date(Date.now() + 3600 * 1000).toISOString();
  const created = await ow.feeds.create({
    name: '/whisk.system/alarms/alarm', trigger: feedTrigger, params: { cron: '0 0 1 1 *', startDate: start },
  });
  assert.strictEqual(created.response.success, true, JSON.stringify(created.response));
  const read = await ow.feeds.get({ name: '/whisk.system/alarms/alarm', trigger: feedTrigger });
  assert.strictEqual(read.response.success, true, JSON.stringify(read.response));
  assert.strictEqual(read.response.result.config.cron, '0 0 1 1 *');
  const deleted = await ow.feeds.delete({ name: '/whisk.system/alarms/alarm', trigger: feedTrigger });
  assert.strictEqual(deleted.response.success, true, JSON.stringify(deleted.response));
});

step('routes.create, list and delete', async () => {
  await ow.actions.create({
    name: web, action: WEB, kind: 'python:3.11', annotations: { 'web-export': true },
  });
  const basepath = `/js${suffix}`;
  const created = await ow.routes.create({
    basepath, relpath: '/users', operation: 'GET', action: web, responsetype: 'http',
  });
  const url = created.gwApiUrl;
  assert.ok(url, JSON.stringify(created));
  const listed = await ow.routes.list({ basepath });
  assert.strictEqual(listed.apis.length, 1, JSON.stringify(listed));
  const paths = listed.apis[0].value.apidoc.paths;
  assert.ok(paths['/users'] && paths['/users'].get, JSON.stringify(paths));
  const response = await fetch(`${url.replace(/\/$/, '')}/users`);
  assert.strictEqual(response.status, 200);
  assert.deepStrictEqual(await response.json(), { method: 'get', path: `${basepath}/users` });
  await ow.routes.delete({ basepath });
  const after = await ow.routes.list({ basepath });
  assert.strictEqual((after.apis || []).length, 0, JSON.stringify(after));
});

step('clean up', async () => {
  await ow.rules.delete({ name: rule });
  await ow.triggers.delete({ name: trigger });
  await ow.triggers.delete({ name: feedTrigger });
  await ow.actions.delete({ name: `${pkg}/echo` });
  await ow.packages.delete({ name: binding });
  await ow.packages.delete({ name: pkg });
  await ow.actions.delete({ name: hello });
  await ow.actions.delete({ name: web });
  await assert.rejects(ow.actions.get({ name: hello }), (err) => err.statusCode === 404);
});

(async () => {
  for (const [title, fn] of steps) {
    try {
      await fn();
    } catch (err) {
      console.error(`FAILED: ${title}: ${err.stack || err}`);
      if (err.error) console.error(JSON.stringify(err.error));
      process.exit(1);
    }
    console.log(`ok: ${title}`);
  }
})();
