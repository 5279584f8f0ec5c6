"""The one-shot init job of docker-compose.yml: everything the stack needs before the controller and the gateway start.

1. Waits (bounded) until CouchDB answers, and creates CouchDB's own `_users` and `_replicator` databases, which a
   single-node CouchDB 3 wants (already there is fine; pywhisk's own databases are the store's business).
2. The guest namespace: its `uuid:key` is kept in /pywhisk/state/auth.guest (a volume). The first run generates a key
   (never a well-known one) and creates the subject `guest` with it through `pywhisk admin`; later runs reuse the file,
   and re-create the subject when the store lost it or holds another key. The key is printed as `AUTH=...`.
3. The gateway: a self-signed certificate (gateway/render.py `ensure_certificate`, kept while valid) and nginx's
   configuration rendered for the compose network, both into /pywhisk/gateway (a volume the gateway mounts read-only).

Settings (environment): PYWHISK_STORE_URL (required), PYWHISK_INIT_TIMEOUT_S (180), PYWHISK_GUEST_SUBJECT (guest),
PYWHISK_GATEWAY_UPSTREAMS (controller:3233, comma-separated), PYWHISK_GATEWAY_HOSTNAMES (the certificate's names,
comma-separated; localhost,127.0.0.1,::1), PYWHISK_GATEWAY_HTTP_PORT (80) and PYWHISK_GATEWAY_HTTPS_PORT (443), the
ports nginx listens on inside its container, and PYWHISK_PUBLIC_APIHOST (only printed).
"""

from __future__ import annotations

import base64
import os
import secrets
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from gateway.render import DEFAULT_HOSTNAMES, GatewayConfig, ensure_certificate, render

STATE_DIR = Path("/pywhisk/state")
GATEWAY_DIR = Path("/pywhisk/gateway")
#: what nginx sees: the gateway container mounts GATEWAY_DIR at the same path
CONFIG_NAME = "nginx.conf"
KEY_ALPHABET = string.ascii_letters + string.digits
#: pywhisk admin's exit codes (wskadmin's)
DONE, NOT_POSSIBLE, STORE_FAILED = 0, 1, 3


def say(message: str) -> None:
    print(f"init: {message}", flush=True)


def _couchdb(store_url: str) -> tuple[str, dict[str, str]]:
    """The server's base URL without credentials, and the headers that carry them."""
    parts = urlsplit(store_url)
    if parts.scheme not in ("http", "https"):
        raise SystemExit(f"init: PYWHISK_STORE_URL must be a CouchDB URL (http or https), not {parts.scheme}:")
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    if parts.username is not None:
        user_pass = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(user_pass.encode()).decode()
    return urlunsplit((parts.scheme, netloc, "/", "", "")), headers


def _request(method: str, url: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, method=method, headers=headers, data=b"" if method == "PUT" else None)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def wait_for_couchdb(store_url: str, deadline: float) -> None:
    base, headers = _couchdb(store_url)
    last = "no answer yet"
    while True:
        try:
            status = _request("GET", base, headers)
            if status == 200:
                break
            last = f"HTTP {status}"
            if status == 401:
                raise SystemExit(f"init: CouchDB at {base} refused the credentials in PYWHISK_STORE_URL")
        except (OSError, urllib.error.URLError) as exc:
            last = str(exc)
        if time.monotonic() > deadline:
            raise SystemExit(f"init: CouchDB at {base} did not answer in time ({last})")
        time.sleep(1.0)
    say(f"CouchDB answers at {base}")
    for database in ("_users", "_replicator"):
        status = _request("PUT", base + database, headers)
        if status not in (201, 202, 412):
            say(f"warning: creating {database} answered HTTP {status}")


def _admin(store_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pywhisk", "admin", "--store", store_url, *args],
                          capture_output=True, text=True, timeout=120, check=False)


def _generate_auth() -> str:
    return f"{uuid.uuid4()}:{''.join(secrets.choice(KEY_ALPHABET) for _ in range(64))}"


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(text)
    os.replace(partial, path)


def ensure_guest(store_url: str, subject: str, deadline: float) -> str:
    key_file = STATE_DIR / f"auth.{subject}"
    auth = key_file.read_text().strip() if key_file.exists() else ""
    if not auth:
        auth = _generate_auth()
        _write_private(key_file, auth + "\n")
        say(f"generated a key for '{subject}' ({key_file})")
    recreated = False
    while True:
        done = _admin(store_url, "user", "create", subject, "-u", auth)
        if done.returncode == DONE:
            say(f"created the subject '{subject}'")
            return auth
        if done.returncode == NOT_POSSIBLE and not recreated:
            whois = _admin(store_url, "user", "whois", auth)
            if whois.returncode == DONE:
                say(f"the subject '{subject}' exists with the key in {key_file}")
                return auth
            say(f"the subject '{subject}' exists with another key: deleting it and creating it with the key in "
                f"{key_file}")
            deleted = _admin(store_url, "user", "delete", subject)
            if deleted.returncode != DONE:
                raise SystemExit(f"init: pywhisk admin user delete {subject} failed (exit {deleted.returncode}):\n"
                                 f"{deleted.stdout}{deleted.stderr}")
            recreated = True
            continue
        if done.returncode == STORE_FAILED and time.monotonic() < deadline:
            say(f"the store is not ready yet: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
            time.sleep(2.0)
            continue
        raise SystemExit(f"init: pywhisk admin user create {subject} failed (exit {done.returncode}):\n"
                         f"{done.stdout}{done.stderr}")


def prepare_gateway(environ: dict[str, str]) -> None:
    hostnames = [h.strip() for h in environ.get("PYWHISK_GATEWAY_HOSTNAMES", "").split(",") if h.strip()]
    cert, key = ensure_certificate(GATEWAY_DIR / "certs", hostnames or DEFAULT_HOSTNAMES)
    # nginx's master reads the key as root in the gateway container; the workers never need it.
    key.chmod(0o600)
    upstreams = [u.strip() for u in environ.get("PYWHISK_GATEWAY_UPSTREAMS", "controller:3233").split(",") if u.strip()]
    config = GatewayConfig(
        upstreams=upstreams,
        # /tmp exists in every nginx image; nginx puts its pid file and temp directories there
        run_dir=Path("/tmp"),
        http_port=int(environ.get("PYWHISK_GATEWAY_HTTP_PORT", "80")),
        https_port=int(environ.get("PYWHISK_GATEWAY_HTTPS_PORT", "443")),
        cert_file=cert,
        key_file=key,
        # no `user` directive: the workers run as the image's own nginx user (nginx, or www-data on Debian)
        user=None,
        access_log="/dev/stdout",
        error_log="/dev/stderr",
    )
    (GATEWAY_DIR / CONFIG_NAME).write_text(render(config))
    say(f"gateway: certificate {cert} for {', '.join(hostnames or DEFAULT_HOSTNAMES)}; "
        f"nginx configuration {GATEWAY_DIR / CONFIG_NAME} in front of {', '.join(upstreams)}")


def main() -> int:
    environ = dict(os.environ)
    store_url = environ.get("PYWHISK_STORE_URL", "")
    if not store_url:
        print("init: PYWHISK_STORE_URL is required", file=sys.stderr)
        return 2
    deadline = time.monotonic() + float(environ.get("PYWHISK_INIT_TIMEOUT_S", "180"))
    prepare_gateway(environ)
    wait_for_couchdb(store_url, deadline)
    subject = environ.get("PYWHISK_GUEST_SUBJECT", "guest")
    auth = ensure_guest(store_url, subject, deadline)
    apihost = environ.get("PYWHISK_PUBLIC_APIHOST")
    if apihost:
        print(f"APIHOST={apihost}", flush=True)
    print(f"AUTH={auth}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
