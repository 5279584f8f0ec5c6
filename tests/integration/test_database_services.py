"""The database and broker servers of tests/services work from a client, over TCP on 127.0.0.1 (or another address).

They run Debian's `postgresql`, `mariadb-server` and `mosquitto` (+ `mosquitto-clients`), which `./run test`
installs; without them these tests fail, they do not skip.
"""

from __future__ import annotations

import dataclasses
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services.mariadb import MariaDBServer, mariadb_server
from tests.services.mosquitto import MosquittoServer, mosquitto_server
from tests.services.postgres import PostgresServer, postgres_server


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    with postgres_server(tmp_path_factory.mktemp("postgres")) as server:
        yield server


@pytest.fixture(scope="module")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBServer]:
    with mariadb_server(tmp_path_factory.mktemp("mariadb")) as server:
        yield server


@pytest.fixture(scope="module")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    with mosquitto_server(tmp_path_factory.mktemp("mosquitto")) as server:
        yield server


def test_postgres_takes_the_password_over_tcp_and_keeps_data_across_a_restart(postgres: PostgresServer) -> None:
    assert postgres.url == f"postgres://pywhisk:{postgres.password}@127.0.0.1:{postgres.port}/pywhisk"
    assert postgres.psql("SHOW listen_addresses").strip() == "127.0.0.1"
    postgres.psql("CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes VALUES (1, 'hi'), (2, 'yo')")
    assert postgres.psql("SELECT id, body FROM notes ORDER BY id") == "1|hi\n2|yo\n"
    assert postgres.psql("SELECT current_user, inet_server_addr()") == "pywhisk|127.0.0.1\n"
    with pytest.raises(RuntimeError, match="password authentication failed"):
        dataclasses.replace(postgres, password="wrong").psql("SELECT 1")

    postgres.stop()
    with pytest.raises(RuntimeError, match="Connection refused"):
        postgres.psql("SELECT 1")
    postgres.start()
    assert postgres.psql("SELECT count(*) FROM notes") == "2\n"


def test_mariadb_takes_the_password_over_tcp(mariadb: MariaDBServer) -> None:
    assert mariadb.url == f"mysql://pywhisk:{mariadb.password}@127.0.0.1:{mariadb.port}/pywhisk"
    assert mariadb.sql("SELECT @@bind_address").strip() == "127.0.0.1"
    mariadb.sql("CREATE TABLE notes (id INT PRIMARY KEY, body TEXT); INSERT INTO notes VALUES (1, 'hi'), (2, 'yo')")
    assert mariadb.sql("SELECT id, body FROM notes ORDER BY id") == "1\thi\n2\tyo\n"
    assert mariadb.sql("SELECT current_user()") == "pywhisk@%\n"
    with pytest.raises(RuntimeError, match="Access denied"):
        dataclasses.replace(mariadb, password="wrong").sql("SELECT 1")


def test_mosquitto_delivers_what_mosquitto_pub_publishes(mosquitto: MosquittoServer) -> None:
    assert mosquitto.url == f"mqtt://127.0.0.1:{mosquitto.port}"
    with mosquitto.subscribe("events/#") as subscription:
        mosquitto.publish("events/a", "hello")
        mosquitto.publish("events/b", "two\nlines")
        mosquitto.publish("other", "not subscribed")
        assert subscription.messages(2) == [("events/a", "hello"), ("events/b", "two\nlines")]
        with pytest.raises(AssertionError, match="0 of 1 messages"):
            subscription.messages(1, timeout_s=0.5)


def _postgres_reply_to_startup(host: str, port: int, source: str) -> tuple[bytes, int]:
    """Send a protocol 3.0 StartupMessage for pywhisk from `source`: the reply's type, and its code if it is `R`."""
    body = struct.pack("!i", 196608) + b"user\0pywhisk\0database\0pywhisk\0\0"
    with socket.create_connection((host, port), timeout=5, source_address=(source, 0)) as connection:
        connection.sendall(struct.pack("!i", len(body) + 4) + body)
        reply = b""
        while len(reply) < 9 and (chunk := connection.recv(9 - len(reply))):
            reply += chunk
    if reply[:1] != b"R":
        return reply[:1], -1
    return b"R", struct.unpack("!i", reply[5:9])[0]


def test_postgres_and_mosquitto_listen_on_the_given_address_only(tmp_path: Path) -> None:
    # 127.0.0.2 is an address of every Linux machine (all of 127/8 is on `lo`), as a Docker bridge's gateway would be
    host = "127.0.0.2"
    with (
        postgres_server(tmp_path / "pg", host=host) as postgres,
        mosquitto_server(tmp_path / "mq", host=host) as broker,
    ):
        assert postgres.host == host
        assert postgres.url == f"postgres://pywhisk:{postgres.password}@{host}:{postgres.port}/pywhisk"
        assert postgres.psql("SHOW listen_addresses").strip() == host
        assert postgres.psql("SELECT current_user, inet_server_addr()") == f"pywhisk|{host}\n"
        # psql's connections come from 127.0.0.1 (the kernel's choice); one from 127.0.0.3, as one from a container
        # on a Docker bridge would be, is admitted by `samenet` too: the server asks for the password (SASL)
        assert _postgres_reply_to_startup(host, postgres.port, source="127.0.0.3") == (b"R", 10)
        with pytest.raises(RuntimeError, match="password authentication failed"):
            dataclasses.replace(postgres, password="wrong").psql("SELECT 1")
        with pytest.raises(RuntimeError, match="Connection refused"):
            dataclasses.replace(postgres, host="127.0.0.1").psql("SELECT 1")

        assert broker.url == f"mqtt://{host}:{broker.port}"
        with broker.subscribe("events/#") as subscription:
            broker.publish("events/a", "hello")
            assert subscription.messages(1) == [("events/a", "hello")]
        for port in (postgres.port, broker.port):
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
