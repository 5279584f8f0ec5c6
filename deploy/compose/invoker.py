"""Entry point of the invoker service in docker-compose: settles the invoker id, then becomes `pywhisk invoker`.

Every invoker needs an id of its own (its Kafka topic `invoker{N}`, its container names `wsk{N}_...`, the balancer's
bookkeeping). With `PYWHISK_INVOKER_ID=replica` (what docker-compose.yml sets) the id is

    PYWHISK_INVOKER_ID_BASE (default 0) + the replica number docker-compose gave this container - 1

so `docker-compose up --scale invoker=3` runs invokers 0, 1 and 2, and a replica that is recreated keeps its number and
so its id. The replica number is the label `com.docker.compose.container-number` of this container, read from the
Docker engine over the socket the invoker has anyway; the container finds its own id in /proc/self/mountinfo (Docker
bind-mounts /etc/hostname and friends from /var/lib/docker/containers/<id>/, also under `network_mode: host`, where
the hostname is the host's). Any other value (a number, or `auto`) goes to `pywhisk invoker` as it is; `auto` claims
an id in the store by host name, which cannot tell replicas apart on the host's network, where they all share the
host's name.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import sys

DOCKER_SOCKET = "/var/run/docker.sock"
_CONTAINER_ID = re.compile(r"/containers/([0-9a-f]{64})/")


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 10.0) -> None:
        super().__init__("docker", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def own_container_id(mountinfo: str = "/proc/self/mountinfo") -> str:
    with open(mountinfo) as lines:
        for line in lines:
            match = _CONTAINER_ID.search(line)
            if match:
                return match.group(1)
    raise RuntimeError(f"cannot find this container's id in {mountinfo}")


def replica_number(socket_path: str = DOCKER_SOCKET) -> int:
    container = own_container_id()
    connection = _UnixConnection(socket_path)
    try:
        connection.request("GET", f"/containers/{container}/json")
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise RuntimeError(f"Docker answered {response.status} for container {container[:12]}: {body[:200]!r}")
    labels = json.loads(body).get("Config", {}).get("Labels") or {}
    number = labels.get("com.docker.compose.container-number")
    if number is None or not number.isdigit():
        raise RuntimeError(f"container {container[:12]} has no docker-compose replica number (not started by compose?)")
    return int(number)


def invoker_id(environ: dict[str, str]) -> str:
    value = environ.get("PYWHISK_INVOKER_ID", "0").strip()
    if value != "replica":
        return value
    base = int(environ.get("PYWHISK_INVOKER_ID_BASE", "0"))
    return str(base + replica_number(environ.get("PYWHISK_DOCKER_SOCKET", DOCKER_SOCKET)) - 1)


def main() -> int:
    environ = dict(os.environ)
    try:
        environ["PYWHISK_INVOKER_ID"] = invoker_id(environ)
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"invoker: cannot settle the invoker id: {exc}", file=sys.stderr, flush=True)
        return 2
    print(f"invoker: id {environ['PYWHISK_INVOKER_ID']}", flush=True)
    os.execvpe(sys.executable, [sys.executable, "-m", "pywhisk", "invoker", *sys.argv[1:]], environ)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
