#!/bin/sh
# pouchdb-server as a stand-in for CouchDB: admin credentials from COUCHDB_USER / COUCHDB_PASSWORD, as the official
# image takes them. pouchdb-server keeps its settings in a JSON file it rewrites itself (it replaces the password by
# its hash), so the file lives with the data; the admin from the environment is (re)set at every start.
set -eu
DATA=/opt/couchdb/data
CONFIG=$DATA/config.json
node -e '
  const fs = require("fs");
  const [path, user, password] = process.argv.slice(1);
  let config = {};
  try { config = JSON.parse(fs.readFileSync(path, "utf8")); } catch (e) { if (e.code !== "ENOENT") throw e; }
  config.admins = config.admins || {};
  if (user) config.admins[user] = password;
  // its request log goes to stdout already; no log file in the data volume
  config.log = Object.assign(config.log || {}, { file: "/dev/null" });
  fs.writeFileSync(path + ".new", JSON.stringify(config, null, 2));
  fs.renameSync(path + ".new", path);
' "$CONFIG" "${COUCHDB_USER:-}" "${COUCHDB_PASSWORD:-}"
if [ -z "${COUCHDB_USER:-}" ]; then
  echo "couchdb stand-in: no COUCHDB_USER: every client is admin ('admin party')" >&2
fi
exec node /opt/pouchdb-server/node_modules/pouchdb-server/bin/pouchdb-server \
  --host 0.0.0.0 --port 5984 --dir "$DATA" --config "$CONFIG" --no-color "$@"
