"""The nginx gateway for tests: Debian's `nginx`, run in the foreground with a configuration from `gateway/render.py`.

`nginx_gateway(run_dir, upstreams)` installs nginx (and openssl) with apt-get when they are missing, makes the
self-signed certificate, renders the configuration for free loopback ports into `run_dir`, starts
`nginx -c CONF -p RUN_DIR` and returns once both ports accept connections; on exit it stops nginx by its pid
(SIGQUIT, then SIGTERM, then SIGKILL, each bounded). Everything nginx writes (pid, logs, temp files) stays under
`run_dir`. `Gateway.reload(upstreams)` points a running gateway at other controllers (a re-render and SIGHUP).

`start()`, `stop()` and `reload()` block; from a coroutine, call them through `asyncio.to_thread`.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gateway.render import GatewayConfig, ensure_certificate, prepare_run_dir, render

#: How long nginx may take to accept connections on both ports after it is spawned, in seconds.
START_TIMEOUT_S = 15.0
#: How long a reload may take until every old worker has exited, in seconds.
RELOAD_TIMEOUT_S = 15.0
#: How long each stop step (SIGQUIT, SIGTERM, SIGKILL) may take, in seconds.
STOP_TIMEOUT_S = 10.0
#: apt-get update + install of nginx, in seconds.
INSTALL_TIMEOUT_S = 600.0
#: Attempts with fresh ports when another process took a chosen port between choosing and binding.
START_ATTEMPTS = 3


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _apt_install(*packages: str) -> None:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RuntimeError(f"missing Debian packages {', '.join(packages)}: install them (needs root and apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock = ["-o", "DPkg::Lock::Timeout=300"]
    for command in (
        ["apt-get", *lock, "update", "-qq"],
        ["apt-get", *lock, "install", "-y", "-qq", "--no-install-recommends", *packages],
    ):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")


def _nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(path, os.X_OK)), None)


def ensure_nginx() -> str:
    """The nginx binary; Debian's `nginx` (and `openssl` for the certificate) are installed when missing."""
    missing = [package for package, present in (("nginx", _nginx_binary()), ("openssl", shutil.which("openssl")))
               if not present]
    if missing:
        _apt_install(*missing)
    binary = _nginx_binary()
    if binary is None:
        raise RuntimeError("nginx is still missing after installing the Debian package `nginx`")
    return binary


def _worker_user() -> str | None:
    """As root, the workers keep the test runner's identity so they can write temp files inside pytest's private
    tmp directory (production passes the image's unprivileged `nginx` user instead). Otherwise no `user` directive:
    an unprivileged master cannot switch users anyway."""
    if os.geteuid() != 0:
        return None
    return f"{pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name}"


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("PPid:") and int(line.split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


@dataclass
class Gateway:
    """One nginx master process and its workers, listening on loopback: plain HTTP and HTTPS."""

    binary: str
    config: GatewayConfig
    ca_file: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def run_dir(self) -> Path:
        return Path(self.config.run_dir)

    @property
    def config_file(self) -> Path:
        return self.run_dir / "nginx.conf"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.config.http_port}"

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.config.https_port}"

    @property
    def access_log(self) -> Path:
        return Path(self.config.access_log_path)

    @property
    def error_log(self) -> Path:
        return Path(self.config.error_log_path)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts the gateway's certificate and nothing else; verification stays on."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def access_entries(self) -> list[dict[str, Any]]:
        """The access log, one JSON object per request. nginx writes a request's line after the response has gone
        out, so a line still being written (no newline yet) is left out."""
        if not self.access_log.exists():
            return []
        complete = self.access_log.read_text().rpartition("\n")[0]
        return [json.loads(line) for line in complete.splitlines() if line.strip()]

    def access_entry(self, request_id: str, timeout_s: float = 5.0) -> dict[str, Any]:
        """The access log line of the request `request_id`, waiting for nginx to write it (bounded)."""
        deadline = time.monotonic() + timeout_s
        while True:
            entries = [entry for entry in self.access_entries() if entry["request_id"] == request_id]
            if entries:
                if len(entries) > 1:
                    raise AssertionError(f"request id {request_id} logged {len(entries)} times")
                return entries[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"request id {request_id} not in the access log within {timeout_s} s")
            time.sleep(0.02)

    def log_tail(self, chars: int = 3000) -> str:
        parts = []
        for path in (self.error_log, self.run_dir / "nginx.out"):
            if path.exists():
                parts.append(f"{path.name}:\n{path.read_text(errors='replace')[-chars:]}")
        return "\n".join(parts)

    def worker_pids(self) -> set[int]:
        return _children(self.process.pid) if self.running and self.process is not None else set()

    def _write_config(self) -> None:
        prepare_run_dir(self.config)
        self.config_file.write_text(render(self.config))

    def start(self) -> None:
        """Spawn nginx and return once both ports accept connections; fail with its logs otherwise."""
        if self.running:
            return
        self._write_config()
        with open(self.run_dir / "nginx.out", "ab") as out:
            self.process = subprocess.Popen(
                [self.binary, "-c", str(self.config_file), "-p", f"{self.run_dir}/", "-e", str(self.error_log)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        ports = [port for port in (self.config.http_port, self.config.https_port) if port is not None]
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if all(_accepts(port) for port in ports) and self.worker_pids():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nginx did not start on ports {ports}:\n{self.log_tail()}")

    def reload(self, upstreams: Sequence[str]) -> None:
        """Points the running gateway at `upstreams`: re-renders the configuration and sends SIGHUP; returns once
        the old workers are gone (so every new request sees the new configuration)."""
        if not self.running or self.process is None:
            raise RuntimeError("the gateway is not running")
        self.config = replace(self.config, upstreams=list(upstreams))
        self._write_config()
        old = self.worker_pids()
        self.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + RELOAD_TIMEOUT_S
        while time.monotonic() < deadline:
            current = self.worker_pids()
            if current and not current & old:
                return
            time.sleep(0.05)
        raise RuntimeError(f"nginx did not reload within {RELOAD_TIMEOUT_S} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop nginx by its pid: SIGQUIT (graceful), then SIGTERM, then SIGKILL to its own process group."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        for stop in (signal.SIGQUIT, signal.SIGTERM):
            process.send_signal(stop)
            try:
                process.wait(STOP_TIMEOUT_S)
                return
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the group nginx was started in: the master and its workers
        process.wait(STOP_TIMEOUT_S)


def _address_in_use(gateway: Gateway) -> bool:
    return "Address already in use" in gateway.log_tail()


@contextlib.contextmanager
def nginx_gateway(
    run_dir: Path, upstreams: Sequence[str], *, cert_dir: Path | None = None, worker_processes: int = 1,
    **config: Any,
) -> Iterator[Gateway]:
    """A started gateway in front of `upstreams` (`host:port`), with plain HTTP and HTTPS on free loopback ports;
    stopped on exit. `config` overrides other `GatewayConfig` fields (`keepalive`, `max_body_mb`, ...)."""
    binary = ensure_nginx()
    run_dir.mkdir(parents=True, exist_ok=True)
    cert, key = ensure_certificate(cert_dir or run_dir / "certs", ("localhost", "127.0.0.1"))
    for attempt in range(1, START_ATTEMPTS + 1):
        http_port, https_port = free_port(), free_port()
        while https_port == http_port:
            https_port = free_port()
        gateway = Gateway(binary, GatewayConfig(
            upstreams=list(upstreams), run_dir=run_dir, http_port=http_port, https_port=https_port,
            cert_file=cert, key_file=key, listen_address="127.0.0.1", user=_worker_user(),
            worker_processes=worker_processes, error_log_level="notice", **config), ca_file=cert)
        try:
            gateway.start()
            break
        except RuntimeError:
            if attempt == START_ATTEMPTS or not _address_in_use(gateway):
                raise
    try:
        yield gateway
    finally:
        gateway.stop()
