"""The gateway's nginx configuration from a few parameters, and its self-signed certificate.

`render(GatewayConfig(...))` fills `nginx.conf.template`; the same template serves tests (loopback ports, a run
directory under pytest's tmp, workers as the test user) and production (the `nginx` image in docker-compose, upstream
`controller:3233`, logs to the container's stdout/stderr). No template engine: placeholders are `{{name}}`, every one
must be filled and nothing else is touched, so nginx's own `$variables` and braces pass through as written.

    python -m gateway.render config --upstream controller:3233 --http-port 80 --https-port 443 \\
        --cert /etc/nginx/certs/gateway.crt --key /etc/nginx/certs/gateway.key --run-dir /var/cache/nginx/pywhisk \\
        --user nginx --access-log /dev/stdout --error-log /dev/stderr --out deploy/gateway/nginx.conf
    python -m gateway.render certificate --dir deploy/gateway/certs --hostname localhost --hostname 127.0.0.1
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

TEMPLATE = Path(__file__).with_name("nginx.conf.template")

#: OpenWhisk's edge nginx uses 75 s; it must exceed the controller's 60 s blocking wait so a blocking invoke gets the
#: controller's answer (the result, or 202 with the activation id) and never the gateway's 504.
PROXY_TIMEOUT_S = 75
#: the controller accepts action documents up to 50 MB and answers bigger ones itself; nginx stops bodies past this
MAX_BODY_MB = 50
#: idle keep-alive connections to the controllers, per worker
KEEPALIVE = 32
#: subjectAltName entries of the self-signed certificate unless told otherwise
DEFAULT_HOSTNAMES = ("localhost", "127.0.0.1", "::1")
CERT_NAME = "gateway.crt"
KEY_NAME = "gateway.key"
#: a certificate closer than this to its expiry is made again
RENEW_BEFORE_S = 7 * 24 * 3600

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_UPSTREAM = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")
_LOG_LEVELS = ("debug", "info", "notice", "warn", "error", "crit", "alert", "emerg")


class GatewayConfigError(ValueError):
    """A parameter the configuration cannot be rendered with; the message names it and its value."""


@dataclass(frozen=True)
class GatewayConfig:
    """What differs between gateways. Ports left None are not listened on; at least one is needed."""

    #: controllers as `host:port` (`127.0.0.1:3233`, `controller:3233`, `[::1]:3233`)
    upstreams: Sequence[str]
    #: pid file, temp paths and (unless given) logs go here; nginx's `-p` prefix
    run_dir: Path
    http_port: int | None = 80
    https_port: int | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    #: the address both ports listen on; "" for every interface
    listen_address: str = ""
    #: the `user` directive; only meaningful (and only emitted) when nginx starts as root
    user: str | None = None
    worker_processes: int | str = "auto"
    worker_connections: int = 1024
    keepalive: int = KEEPALIVE
    max_body_mb: int = MAX_BODY_MB
    proxy_timeout_s: int = PROXY_TIMEOUT_S
    #: default: `<run_dir>/logs/access.log` (JSON lines); `/dev/stdout` in a container
    access_log: str | None = None
    #: default: `<run_dir>/logs/error.log`; `/dev/stderr` in a container
    error_log: str | None = None
    error_log_level: str = "warn"

    @property
    def access_log_path(self) -> str:
        return self.access_log or str(Path(self.run_dir) / "logs" / "access.log")

    @property
    def error_log_path(self) -> str:
        return self.error_log or str(Path(self.run_dir) / "logs" / "error.log")


def _port(name: str, value: int | None) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or not 0 < value < 65536:
        raise GatewayConfigError(f"{name} must be a port number (1..65535), not {value!r}")
    return value


def _listen(address: str, port: int, ssl: bool) -> str:
    host = f"[{address}]" if ":" in address else address
    where = f"{host}:{port}" if host else str(port)
    return f"        listen {where}{' ssl' if ssl else ''};"


def _plain_path(name: str, value: str) -> str:
    # Paths go into the config unquoted; refuse what would change its syntax.
    if not value or re.search(r"[\s;{}'\"]", value):
        raise GatewayConfigError(f"{name} must be a path without spaces, quotes, braces or ';', not {value!r}")
    return value


def values(config: GatewayConfig) -> dict[str, str]:
    """The placeholder values for `config`, after checking every parameter."""
    if not config.upstreams:
        raise GatewayConfigError("at least one upstream controller (host:port) is needed")
    servers = []
    for upstream in config.upstreams:
        match = _UPSTREAM.match(upstream)
        if match is None or not 0 < int(match.group(2)) < 65536:
            raise GatewayConfigError(f"upstream must be host:port, not {upstream!r}")
        servers.append(f"        server {upstream};")
    http_port = _port("http_port", config.http_port)
    https_port = _port("https_port", config.https_port)
    if http_port is None and https_port is None:
        raise GatewayConfigError("at least one of http_port and https_port is needed")
    if http_port is not None and http_port == https_port:
        raise GatewayConfigError(f"http_port and https_port must differ, both are {http_port}")
    listen = []
    if http_port is not None:
        listen.append(_listen(config.listen_address, http_port, ssl=False))
    tls = ""
    if https_port is not None:
        if config.cert_file is None or config.key_file is None:
            raise GatewayConfigError("https_port needs cert_file and key_file")
        listen.append(_listen(config.listen_address, https_port, ssl=True))
        tls = "\n".join([
            f"        ssl_certificate {_plain_path('cert_file', str(config.cert_file))};",
            f"        ssl_certificate_key {_plain_path('key_file', str(config.key_file))};",
            "        ssl_protocols TLSv1.2 TLSv1.3;",
            "        ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
            "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:"
            "ECDHE-RSA-CHACHA20-POLY1305;",
            "        ssl_prefer_server_ciphers off;",
            "        ssl_session_cache shared:pywhisk_tls:10m;",
            "        ssl_session_timeout 1d;",
            "        ssl_session_tickets off;",
        ])
    if config.listen_address:
        try:
            ipaddress.ip_address(config.listen_address)
        except ValueError:
            raise GatewayConfigError(f"listen_address must be an IP address, not {config.listen_address!r}") from None
    if config.error_log_level not in _LOG_LEVELS:
        raise GatewayConfigError(f"error_log_level must be one of {', '.join(_LOG_LEVELS)}")
    workers = str(config.worker_processes)
    if workers != "auto" and not (workers.isdigit() and int(workers) > 0):
        raise GatewayConfigError(f"worker_processes must be 'auto' or a positive number, not {workers!r}")
    for name in ("worker_connections", "keepalive", "max_body_mb", "proxy_timeout_s"):
        number = getattr(config, name)
        if not isinstance(number, int) or number <= 0:
            raise GatewayConfigError(f"{name} must be a positive integer, not {number!r}")
    if config.proxy_timeout_s <= 60:
        raise GatewayConfigError(
            f"proxy_timeout_s must exceed the controller's 60 s blocking wait, not {config.proxy_timeout_s}")
    user = ""
    if config.user:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+( [A-Za-z0-9_.-]+)?", config.user):
            raise GatewayConfigError(f"user must be 'user' or 'user group', not {config.user!r}")
        user = f"user {config.user};"
    return {
        "user": user,
        "worker_processes": workers,
        "worker_connections": str(config.worker_connections),
        "run_dir": _plain_path("run_dir", str(config.run_dir)),
        "error_log": _plain_path("error_log", config.error_log_path),
        "error_log_level": config.error_log_level,
        "access_log": _plain_path("access_log", config.access_log_path),
        "max_body_mb": str(config.max_body_mb),
        "max_body_bytes": str(config.max_body_mb * 1024 * 1024),
        "upstream_servers": "\n".join(servers),
        "keepalive": str(config.keepalive),
        "listen": "\n".join(listen),
        "tls": tls,
        "proxy_timeout_s": str(config.proxy_timeout_s),
    }


def fill(template: str, fields: dict[str, str]) -> str:
    """`template` with every `{{name}}` replaced; a placeholder without a value is an error, not an empty string."""
    missing = sorted(set(_PLACEHOLDER.findall(template)) - fields.keys())
    if missing:
        raise GatewayConfigError(f"the template needs values for: {', '.join(missing)}")
    return _PLACEHOLDER.sub(lambda match: fields[match.group(1)], template)


def render(config: GatewayConfig, template: Path = TEMPLATE) -> str:
    """The nginx configuration for `config`."""
    return fill(template.read_text(), values(config))


def prepare_run_dir(config: GatewayConfig) -> None:
    """Creates the run directory and the directories of its log files (nginx makes its temp directories)."""
    Path(config.run_dir).mkdir(parents=True, exist_ok=True)
    for log in (config.access_log_path, config.error_log_path):
        if not log.startswith("/dev/"):
            Path(log).parent.mkdir(parents=True, exist_ok=True)


def write(config: GatewayConfig, path: Path) -> Path:
    """Renders `config` to `path` (and prepares its run directory); returns `path`."""
    text = render(config)
    prepare_run_dir(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --- the self-signed certificate -----------------------------------------------------------------------------------


def _openssl() -> str:
    found = shutil.which("openssl")
    if found is None:
        raise RuntimeError("the openssl command is missing; install it (Debian package `openssl`)")
    return found


def _subject_alt_names(hostnames: Sequence[str]) -> str:
    entries = []
    for name in hostnames:
        try:
            ipaddress.ip_address(name)
            entries.append(f"IP:{name}")
        except ValueError:
            if not re.fullmatch(r"[A-Za-z0-9*]([A-Za-z0-9.*-]*[A-Za-z0-9])?", name):
                raise GatewayConfigError(f"not a hostname or IP address: {name!r}") from None
            entries.append(f"DNS:{name}")
    return ", ".join(entries)


def _still_valid(openssl: str, cert: Path) -> bool:
    done = subprocess.run([openssl, "x509", "-in", str(cert), "-noout", "-checkend", str(RENEW_BEFORE_S)],
                          capture_output=True, check=False, timeout=30)
    return done.returncode == 0


def ensure_certificate(
    directory: Path, hostnames: Sequence[str] = DEFAULT_HOSTNAMES, days: int = 825
) -> tuple[Path, Path]:
    """`(cert, key)` in `directory`: a self-signed certificate for `hostnames` (subjectAltName), made with the
    openssl CLI when missing or about to expire, and kept otherwise. The certificate is its own trust anchor: clients
    verify against the certificate file (as a CA file), never with verification off."""
    if not hostnames:
        raise GatewayConfigError("the certificate needs at least one hostname")
    openssl = _openssl()
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / CERT_NAME, directory / KEY_NAME
    if cert.exists() and key.exists() and _still_valid(openssl, cert):
        return cert, key
    common_name = next((h for h in hostnames if not _is_ip(h)), hostnames[0])
    request_config = "\n".join([
        "[req]",
        "prompt = no",
        "distinguished_name = dn",
        "x509_extensions = ext",
        "[dn]",
        f"CN = {common_name}",
        "O = pywhisk gateway (self-signed)",
        "[ext]",
        "basicConstraints = critical, CA:FALSE",
        "keyUsage = critical, digitalSignature, keyEncipherment",
        "extendedKeyUsage = serverAuth",
        f"subjectAltName = {_subject_alt_names(hostnames)}",
        "subjectKeyIdentifier = hash",
        "authorityKeyIdentifier = keyid:always",
        "",
    ])
    with tempfile.TemporaryDirectory(dir=directory, prefix=".cert-") as work:
        conf, new_cert, new_key = Path(work) / "req.cnf", Path(work) / CERT_NAME, Path(work) / KEY_NAME
        conf.write_text(request_config)
        done = subprocess.run(
            [openssl, "req", "-x509", "-config", str(conf), "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-sha256", "-days", str(days), "-keyout", str(new_key), "-out", str(new_cert)],
            capture_output=True, text=True, check=False, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"openssl could not make the certificate (exit {done.returncode}):\n{done.stderr}")
        new_key.chmod(0o600)
        os.replace(new_key, key)
        os.replace(new_cert, cert)
    return cert, key


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


# --- command line ---------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.render", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    conf = commands.add_parser("config", help="render the nginx configuration")
    conf.add_argument("--upstream", action="append", required=True, help="controller host:port (repeatable)")
    conf.add_argument("--run-dir", type=Path, required=True, help="pid file, temp paths and default logs")
    conf.add_argument("--http-port", type=int, default=None)
    conf.add_argument("--https-port", type=int, default=None)
    conf.add_argument("--cert", type=Path, default=None, help="certificate path as nginx sees it")
    conf.add_argument("--key", type=Path, default=None, help="key path as nginx sees it")
    conf.add_argument("--listen-address", default="")
    conf.add_argument("--user", default=None, help="the `user` directive (only when nginx starts as root)")
    conf.add_argument("--worker-processes", default="auto")
    conf.add_argument("--access-log", default=None)
    conf.add_argument("--error-log", default=None)
    conf.add_argument("--out", type=Path, default=None, help="write here (default: stdout)")
    cert = commands.add_parser("certificate", help="make the self-signed certificate when missing")
    cert.add_argument("--dir", type=Path, required=True)
    cert.add_argument("--hostname", action="append", default=None, help="subjectAltName entry (repeatable)")
    args = parser.parse_args(argv)
    try:
        if args.command == "certificate":
            made = ensure_certificate(args.dir, args.hostname or DEFAULT_HOSTNAMES)
            print("\n".join(str(path) for path in made))
            return 0
        config = GatewayConfig(
            upstreams=args.upstream, run_dir=args.run_dir, http_port=args.http_port, https_port=args.https_port,
            cert_file=args.cert, key_file=args.key, listen_address=args.listen_address, user=args.user,
            worker_processes=args.worker_processes, access_log=args.access_log, error_log=args.error_log)
        if args.out is None:
            sys.stdout.write(render(config))
        else:
            path = args.out
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(config))
            print(path)
    except (GatewayConfigError, RuntimeError) as exc:
        print(f"gateway.render: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
