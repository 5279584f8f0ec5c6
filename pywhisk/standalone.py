"""The standalone platform: controller and invoker in one process, on SQLite, the in-process bus and local
containers. The same controller and invoker code runs distributed."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from aiohttp import web

from controller.app import make_app
from feeds import FeedService
from invoker import Invoker
from invoker.containers import open_factory
from pywhisk.process import run_until_signalled
from pywhisk.services import feed_options, with_invoker_id
from whisk.bus import open_bus
from whisk.config import ControllerSettings, FeedSettings, InvokerSettings, StandaloneSettings
from whisk.entities.identity import NamespaceKey, Subject, generate_key, generate_uuid, hash_key
from whisk.store import NotFound, Store, open_store

log = logging.getLogger("pywhisk.standalone")

GUEST = "guest"
GUEST_KEY_FILE = "auth.guest"


async def ensure_guest(store: Store, data_dir: Path) -> str:
    """The guest's `uuid:key`: generated on first start and kept in the data dir; the store holds only its hash."""
    key_file = data_dir / GUEST_KEY_FILE
    if key_file.exists():
        uuid, _, key = key_file.read_text().strip().partition(":")
    else:
        uuid, key = generate_uuid(), generate_key()
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(f"{uuid}:{key}\n")
    guest_ns = NamespaceKey(name=GUEST, uuid=uuid, key_hash=hash_key(key))
    try:
        current, rev = await store.get_subject(GUEST)
    except NotFound:
        await store.put_subject(Subject(subject=GUEST, namespaces=[guest_ns]))
    else:
        # keep what an administrator changed (other namespaces, limits, a block); only the key file is authoritative
        if guest_ns not in current.namespaces:
            others = [ns for ns in current.namespaces if ns.name != GUEST]
            await store.put_subject(current.model_copy(update={"namespaces": [guest_ns, *others]}), rev)
    return f"{uuid}:{key}"


def write_wskprops(path: Path, values: dict[str, str]) -> None:
    """Set `KEY=value` lines in a wskprops file, keeping its other lines."""
    lines = path.read_text().splitlines() if path.exists() else []
    kept = [line for line in lines if line.split("=", 1)[0].strip() not in values]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([*kept, *(f"{k}={v}" for k, v in values.items())]) + "\n")


def wskprops_path(settings: StandaloneSettings, environ: Mapping[str, str]) -> Path:
    if settings.wskprops is not None:
        return settings.wskprops
    if environ.get("WSK_CONFIG_FILE"):
        return Path(environ["WSK_CONFIG_FILE"])
    return Path.home() / ".wskprops"


async def container_kind(requested: str) -> str:
    """`docker` or `process`: `auto` means Docker when an engine answers on its socket."""
    if requested != "auto":
        return requested
    from invoker.containers.docker import engine_answers

    return "docker" if await engine_answers() else "process"


async def serve(settings: StandaloneSettings, environ: Mapping[str, str], stop: asyncio.Event) -> None:
    data_dir = settings.data_dir.expanduser()
    data_dir.mkdir(parents=True, exist_ok=True)
    store = await open_store(f"sqlite:///{data_dir.resolve() / 'pywhisk.db'}")
    bus = await open_bus("local:")
    runner: web.AppRunner | None = None
    invoker: Invoker | None = None
    feed_service: FeedService | None = None
    try:
        auth = await ensure_guest(store, data_dir)
        controller_settings = ControllerSettings.from_env(environ)
        app = make_app(controller_settings, store, bus)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        port = runner.addresses[0][1]
        api_host = f"http://{settings.host}:{port}"

        containers = await container_kind(settings.containers)
        log.info("actions run in %s containers", containers)
        invoker_settings = await with_invoker_id(
            InvokerSettings.from_env(environ, containers=containers, api_host=api_host), store)
        factory = await open_factory(invoker_settings)
        invoker = Invoker(invoker_settings, store, bus, factory)
        await invoker.start()
        local_api = f"http://{'127.0.0.1' if settings.host in ('0.0.0.0', '::', '') else settings.host}:{port}"
        feed_service = FeedService(store, bus, local_api, **feed_options(FeedSettings.from_env(environ)))
        await feed_service.start()

        props = wskprops_path(settings, environ)
        write_wskprops(props, {"APIHOST": api_host, "AUTH": auth})
        print(f"pywhisk standalone is up ({containers} containers).\nAPIHOST={api_host}\nAUTH={auth}\n"
              f"(written to {props})", flush=True)
        await stop.wait()
        log.info("shutting down")
    finally:
        if feed_service is not None:
            await feed_service.close()
        if runner is not None:
            await runner.cleanup()
        if invoker is not None:
            await invoker.stop()
        await bus.close()
        await store.close()


def run(settings: StandaloneSettings, environ: Mapping[str, str]) -> int:
    return run_until_signalled(lambda stop: serve(settings, environ, stop), environ.get("PYWHISK_LOG_LEVEL", "INFO"))
