"""`pywhisk admin`: subjects, namespaces, keys, blocking and per-namespace limits, after OpenWhisk's `wskadmin`.

Commands (as `wskadmin`, plus `user rotate`)::

    user create SUBJECT [-ns NAMESPACE] [-u UUID:KEY]   prints the new UUID:KEY
    user rotate SUBJECT [-ns NAMESPACE]                 a new key for the namespace, same uuid; prints UUID:KEY
    user delete SUBJECT [-ns NAMESPACE]                 the subject, or one of its namespaces
    user get SUBJECT [-ns NAMESPACE] [-a]               the uuid of a namespace (all namespaces with -a)
    user whois UUID:KEY                                 the subject and namespace of a key
    user list NAMESPACE [-p N] [-a] [-k]                the identity owning a namespace
    user block SUBJECT... / user unblock SUBJECT...
    limits set NAMESPACE [--invocationsPerMinute N] [--concurrentInvocations N] [--firesPerMinute N]
    limits get NAMESPACE / limits delete NAMESPACE

Unlike OpenWhisk, the store keeps keys only as hashes: a key is printed once, by `user create` and `user rotate`,
and can never be shown again. A namespace belongs to one subject; a subject may own several namespaces. Limits live
in the owning subject's document (`Subject.limits`); `limits set` changes the given limits and keeps the others.

Exit codes follow `wskadmin` (tools/admin Main.scala): 0 success, 1 the state forbids it (`IllegalState`: exists
already, does not exist, blocked), 2 a bad argument (`IllegalArg`, and argparse usage errors), 3 the store failed.
`user block`/`unblock` exit with the number of subjects that could not be changed. Messages go to stdout, errors to
stderr as `error: ...`.

Every change is a read-modify-write at the subject's revision, retried when another writer got in between, so the
commands are safe against a running controller (SQLite in WAL mode, or CouchDB).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid as uuidlib
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from pydantic import SecretStr

from whisk.config import SettingsError, _Settings
from whisk.entities.identity import (
    KEY_LENGTH,
    Identity,
    NamespaceKey,
    NamespaceLimits,
    Subject,
    generate_key,
    generate_uuid,
    hash_key,
)
from whisk.entities.names import is_valid_name
from whisk.store import Conflict, NotFound, Store, StoreError, open_store

MIN_SUBJECT_LENGTH = 5
#: how often a change is retried when the subject's revision moved under it
UPDATE_ATTEMPTS = 5
#: the standalone platform's database file inside its data dir (pywhisk/standalone.py)
STANDALONE_DB = "pywhisk.db"
KEY_NOT_SHOWN = "(keys are stored only as hashes: a key is shown once, by 'user create' and 'user rotate')"
LIMIT_FIELDS = ("invocationsPerMinute", "concurrentInvocations", "firesPerMinute")


class AdminError(Exception):
    """A command that cannot be done; `code` is the exit code."""

    code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class IllegalState(AdminError):
    code = 1


class IllegalArg(AdminError):
    code = 2


class AdminSettings(_Settings):
    #: the store to administer; default: the standalone database in `data_dir`
    store_url: SecretStr | None = None
    data_dir: Path = Path.home() / ".pywhisk"


# helpers


def parse_auth(auth: str) -> tuple[str, str]:
    """`uuid:key` split and checked as `wskadmin` does: a UUID and a key of at least 64 characters."""
    parts = auth.strip().split(":")
    if len(parts) != 2:
        raise IllegalArg("failed to determine authorization id and key (expected UUID:KEY)")
    uuid, key = parts
    try:
        uuidlib.UUID(uuid)
    except ValueError:
        raise IllegalArg("authorization id is not a valid UUID") from None
    if len(key) < KEY_LENGTH:
        raise IllegalArg(f"authorization key must be at least {KEY_LENGTH} characters long")
    return uuid, key


def _namespace_arg(namespace: str | None, subject: str) -> str:
    if namespace is None:
        return subject
    namespace = namespace.strip()
    if not namespace:
        raise IllegalArg("Namespace must not be empty")
    return namespace


def _subject_missing(subject: str) -> IllegalState:
    return IllegalState(f"Subject '{subject}' does not exist")


def _entry(subject: Subject, namespace: str) -> NamespaceKey:
    for entry in subject.namespaces:
        if entry.name == namespace:
            return entry
    raise IllegalState(f"Namespace '{namespace}' does not exist for '{subject.subject}'")


async def _update(
    store: Store, name: str, change: Callable[[Subject], Subject], clash: str = "", missing: str = ""
) -> Subject:
    """Apply `change` to the subject at its current revision. A `Conflict` with an unchanged revision means a
    namespace or uuid of the result belongs to another subject (`clash`); otherwise the change is applied again."""

    def gone() -> IllegalState:
        return IllegalState(missing) if missing else _subject_missing(name)

    for _ in range(UPDATE_ATTEMPTS):
        try:
            current, rev = await store.get_subject(name)
        except NotFound:
            raise gone() from None
        updated = change(current.model_copy(deep=True))
        try:
            await store.put_subject(updated, rev)
            return updated
        except Conflict:
            try:
                _, now = await store.get_subject(name)
            except NotFound:
                raise gone() from None
            if now == rev:
                raise IllegalState(clash or f"Subject '{name}' conflicts with another subject") from None
    raise IllegalState(f"Subject '{name}' kept changing while being updated; try again")


async def _owner(store: Store, namespace: str) -> str:
    try:
        return (await store.identity_by_namespace(namespace)).subject
    except NotFound:
        raise IllegalState(f"Namespace '{namespace}' does not exist (or its subject is blocked)") from None


# user commands


async def create_user(store: Store, subject: str, namespace: str | None = None, auth: str | None = None) -> str:
    """Create the subject with a namespace (default: named as the subject), or add the namespace to an existing
    subject. Returns the `uuid:key`, the only time the key is known."""
    subject = subject.strip()
    if len(subject) < MIN_SUBJECT_LENGTH:
        raise IllegalArg(f"Subject name must be at least {MIN_SUBJECT_LENGTH} characters")
    name = _namespace_arg(namespace, subject)
    if not is_valid_name(name):
        raise IllegalArg(f"Namespace '{name}' is not a valid name")
    uuid, key = parse_auth(auth) if auth is not None else (generate_uuid(), generate_key())
    entry = NamespaceKey(name=name, uuid=uuid, key_hash=hash_key(key))
    clash = f"Namespace '{name}' already exists: it belongs to another subject"
    if auth is not None:
        clash += f", or uuid {uuid} does"

    try:
        await store.get_subject(subject)
    except NotFound:
        try:
            await store.put_subject(Subject(subject=subject, namespaces=[entry]))
            return f"{uuid}:{key}"
        except Conflict:
            try:
                await store.get_subject(subject)
            except NotFound:
                raise IllegalState(clash) from None
            raise IllegalState(f"Subject '{subject}' already exists") from None

    def add(current: Subject) -> Subject:
        if current.blocked:
            raise IllegalState("The subject you want to edit is blocked")
        if any(n.name == name for n in current.namespaces):
            raise IllegalState("Namespace already exists")
        current.namespaces.append(entry)
        return current

    await _update(store, subject, add, clash)
    return f"{uuid}:{key}"


async def rotate_key(store: Store, subject: str, namespace: str | None = None) -> str:
    """A new key for the namespace (default: named as the subject), keeping its uuid; the old key stops working.
    Returns the new `uuid:key`."""
    name = _namespace_arg(namespace, subject)
    key = generate_key()
    uuid = ""

    def rotate(current: Subject) -> Subject:
        nonlocal uuid
        entry = _entry(current, name)
        entry.key_hash = hash_key(key)
        uuid = entry.uuid
        return current

    await _update(store, subject, rotate, f"uuid of namespace '{name}' belongs to another subject")
    return f"{uuid}:{key}"


async def delete_user(store: Store, subject: str, namespace: str | None = None) -> str:
    """Delete the subject, or with `namespace` only that namespace and its limits. Returns the message to show."""
    if not subject.strip():
        raise IllegalArg("Subject must not be empty")
    if namespace is not None:
        name = _namespace_arg(namespace, subject)

        def remove(current: Subject) -> Subject:
            _entry(current, name)
            current.namespaces = [n for n in current.namespaces if n.name != name]
            current.limits.pop(name, None)
            return current

        await _update(store, subject, remove, missing="Subject to delete not found")
        return "Namespace deleted"
    for _ in range(UPDATE_ATTEMPTS):
        try:
            _, rev = await store.get_subject(subject)
            await store.delete_subject(subject, rev)
            return "Subject deleted"
        except NotFound:
            raise IllegalState("Subject to delete not found") from None
        except Conflict:
            continue
    raise IllegalState(f"Subject '{subject}' kept changing while being deleted; try again")


async def get_user(
    store: Store, subject: str, namespace: str | None = None, all_namespaces: bool = False
) -> tuple[Subject, list[NamespaceKey]]:
    """The subject and its namespace (default: named as the subject), or all its namespaces."""
    try:
        current, _ = await store.get_subject(subject)
    except NotFound:
        raise _subject_missing(subject) from None
    if all_namespaces:
        return current, list(current.namespaces)
    return current, [_entry(current, _namespace_arg(namespace, subject))]


async def whois(store: Store, auth: str) -> Identity:
    """The identity a `uuid:key` authenticates as; blocked subjects are not recognised."""
    parts = auth.strip().split(":")
    if len(parts) != 2:
        raise IllegalArg("failed to determine authorization id and key (expected UUID:KEY)")
    try:
        return await store.identity_by_key(parts[0], parts[1])
    except NotFound:
        raise IllegalState("Subject id is not recognized") from None


async def list_identities(store: Store, namespace: str) -> list[Identity]:
    """The identities of a namespace: its owner (a namespace has one), none if unknown or blocked."""
    try:
        identity = await store.identity_by_namespace(namespace)
    except NotFound:
        raise IllegalState(f"no identities found for namespace '{namespace}'") from None
    return [identity]


async def set_blocked(store: Store, subject: str, blocked: bool) -> str:
    """Block or unblock the subject: a blocked subject cannot authenticate. Returns the message to show."""

    def change(current: Subject) -> Subject:
        current.blocked = blocked
        return current

    await _update(store, subject, change)
    return f"'{subject}' {'blocked' if blocked else 'unblocked'} successfully"


# limits commands


async def set_limits(store: Store, namespace: str, **values: int | None) -> str:
    """Set the given limits (None leaves one as it is) of a namespace. Returns the message to show."""
    given = {k: v for k, v in values.items() if v is not None}
    unknown = set(given) - set(LIMIT_FIELDS)
    if unknown:
        raise IllegalArg(f"unknown limits: {', '.join(sorted(unknown))}")
    if not given:
        raise IllegalArg(f"give at least one of --{', --'.join(LIMIT_FIELDS)}")
    negative = [k for k, v in given.items() if v < 0]
    if negative:
        raise IllegalArg(f"limits must not be negative: {', '.join(negative)}")
    existed = False

    def change(current: Subject) -> Subject:
        nonlocal existed
        _entry(current, namespace)
        old = current.limits.get(namespace)
        existed = old is not None and old != NamespaceLimits()
        current.limits[namespace] = (old or NamespaceLimits()).model_copy(update=given)
        return current

    await _update(store, await _owner(store, namespace), change)
    return f"Limits successfully {'updated' if existed else 'set'} for '{namespace}'"


async def get_limits(store: Store, namespace: str) -> NamespaceLimits | None:
    """The namespace's own limits, or None when the system defaults apply to all of them."""
    try:
        current, _ = await store.get_subject(await _owner(store, namespace))
    except NotFound:
        return None
    limits = current.limits.get(namespace)
    return None if limits is None or limits == NamespaceLimits() else limits


async def delete_limits(store: Store, namespace: str) -> str:
    """Remove the namespace's limits: the system defaults apply. Returns the message to show."""

    def change(current: Subject) -> Subject:
        if current.limits.pop(namespace, None) in (None, NamespaceLimits()):
            raise IllegalState(f"Limits not found for '{namespace}'")
        return current

    await _update(store, await _owner(store, namespace), change)
    return "Limits deleted"


# command line


def _add_location(parser: argparse.ArgumentParser) -> None:
    # accepted before and after the subcommand; SUPPRESS keeps a later parser from erasing an earlier value
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--store", metavar="URL", default=argparse.SUPPRESS,
                       help="store URL: sqlite:///path.db or http(s)://user:pass@host:port/?prefix=... "
                            "(default $PYWHISK_STORE_URL, else the standalone database in the data dir)")
    where.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS,
                       help="a standalone data dir; its pywhisk.db is the store (default $PYWHISK_DATA_DIR or "
                            "~/.pywhisk)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `admin` arguments and subcommands, on the parser `pywhisk admin` gets."""
    location = argparse.ArgumentParser(add_help=False)
    _add_location(location)
    _add_location(parser)
    groups = parser.add_subparsers(dest="group", required=True, metavar="{user,limits}")

    user = groups.add_parser("user", help="manage users").add_subparsers(dest="subcommand", required=True)
    cmd = user.add_parser("create", parents=[location], help="create a user and show its authorization key")
    cmd.add_argument("subject", help="the subject to create (at least 5 characters)")
    cmd.add_argument("-ns", "--namespace", help="the namespace to create (default: named as the subject)")
    cmd.add_argument("-u", "--auth", metavar="UUID:KEY", help="the uuid:key to use instead of a generated one")
    cmd = user.add_parser("rotate", parents=[location], help="give a namespace a new key and show it")
    cmd.add_argument("subject")
    cmd.add_argument("-ns", "--namespace", help="the namespace (default: named as the subject)")
    cmd = user.add_parser("delete", parents=[location], help="delete a user, or one of its namespaces")
    cmd.add_argument("subject")
    cmd.add_argument("-ns", "--namespace", help="delete only this namespace")
    cmd = user.add_parser("get", parents=[location], help="show the uuid of a user's namespace (never its key)")
    cmd.add_argument("subject")
    cmd.add_argument("-ns", "--namespace", help="the namespace (default: named as the subject)")
    cmd.add_argument("-a", "--all", action="store_true", help="list all namespaces and their uuids")
    cmd = user.add_parser("whois", parents=[location], help="identify a user from an authorization key")
    cmd.add_argument("authkey", metavar="UUID:KEY")
    cmd = user.add_parser("list", parents=[location], help="show the identity owning a namespace")
    cmd.add_argument("namespace")
    cmd.add_argument("-p", "--pick", metavar="N", type=int, default=1, help="show no more than N identities")
    cmd.add_argument("-a", "--all", action="store_true", help="show all identities")
    cmd.add_argument("-k", "--key", action="store_true", help="show only the uuids (keys are not stored)")
    for verb in ("block", "unblock"):
        cmd = user.add_parser(verb, parents=[location], help=f"{verb} one or more users")
        cmd.add_argument("subjects", nargs="+")

    limits = groups.add_parser("limits", help="manage namespace-specific limits")
    limit_commands = limits.add_subparsers(dest="subcommand", required=True)
    cmd = limit_commands.add_parser("set", parents=[location], help="set limits of a namespace")
    cmd.add_argument("namespace")
    cmd.add_argument("--invocationsPerMinute", type=int, metavar="N", help="invocations per minute allowed")
    cmd.add_argument("--concurrentInvocations", type=int, metavar="N", help="concurrent invocations allowed")
    cmd.add_argument("--firesPerMinute", type=int, metavar="N", help="trigger fires per minute allowed")
    cmd = limit_commands.add_parser("get", parents=[location], help="show limits of a namespace")
    cmd.add_argument("namespace")
    cmd = limit_commands.add_parser("delete", parents=[location],
                                    help="delete limits of a namespace (system defaults apply)")
    cmd.add_argument("namespace")


def redact(url: str) -> str:
    """The URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def store_url(args: argparse.Namespace, environ: Mapping[str, str]) -> str:
    """`--store`, else `--data-dir`, else `PYWHISK_STORE_URL`, else `PYWHISK_DATA_DIR`, else `~/.pywhisk`; a data
    dir must exist (a typo should not create an empty database)."""
    store_flag = getattr(args, "store", None)
    data_dir_flag = getattr(args, "data_dir", None)
    if store_flag is not None and data_dir_flag is not None:
        raise IllegalArg("give --store or --data-dir, not both")
    settings = AdminSettings.from_env(environ, store_url=store_flag, data_dir=data_dir_flag)
    if store_flag is None and data_dir_flag is None and settings.store_url is not None:
        return settings.store_url.get_secret_value()
    if store_flag is not None:
        return store_flag
    data_dir = settings.data_dir.expanduser().resolve()
    if not data_dir.is_dir():
        raise IllegalArg(f"data dir {data_dir} does not exist: start 'pywhisk standalone' first, or give --store")
    return f"sqlite:///{data_dir / STANDALONE_DB}"


async def _run(args: argparse.Namespace, store: Store, out: TextIO, err: TextIO) -> int:
    command = (args.group, args.subcommand)
    if command == ("user", "create"):
        print(await create_user(store, args.subject, args.namespace, args.auth), file=out)
    elif command == ("user", "rotate"):
        print(await rotate_key(store, args.subject, args.namespace), file=out)
    elif command == ("user", "delete"):
        print(await delete_user(store, args.subject, args.namespace), file=out)
    elif command == ("user", "get"):
        subject, entries = await get_user(store, args.subject, args.namespace, args.all)
        for entry in entries:
            print(f"{entry.name}\t{entry.uuid}" if args.all else entry.uuid, file=out)
        print(KEY_NOT_SHOWN, file=err)
        if subject.blocked:
            print(f"note: '{subject.subject}' is blocked", file=err)
    elif command == ("user", "whois"):
        identity = await whois(store, args.authkey)
        print(f"subject: {identity.subject}\nnamespace: {identity.namespace}", file=out)
    elif command == ("user", "list"):
        if args.pick < 1:
            raise IllegalArg("pick at least 1 identity to show")
        identities = await list_identities(store, args.namespace)
        for identity in identities if args.all else identities[: args.pick]:
            print(identity.uuid if args.key else f"{identity.uuid}\t{identity.subject}", file=out)
    elif command in (("user", "block"), ("user", "unblock")):
        failed = 0
        for subject in args.subjects:
            try:
                print(await set_blocked(store, subject, args.subcommand == "block"), file=out)
            except AdminError as exc:
                print(f"error: {exc.message}", file=err)
                failed += 1
        return min(failed, 255)
    elif command == ("limits", "set"):
        values = {name: getattr(args, name) for name in LIMIT_FIELDS}
        print(await set_limits(store, args.namespace, **values), file=out)
    elif command == ("limits", "get"):
        limits = await get_limits(store, args.namespace)
        if limits is None:
            print("No limits found, default system limits apply", file=out)
        for name in LIMIT_FIELDS:
            value = getattr(limits, name, None)
            if value is not None:
                print(f"{name} = {value}", file=out)
    elif command == ("limits", "delete"):
        print(await delete_limits(store, args.namespace), file=out)
    else:  # pragma: no cover - argparse allows only the commands above
        raise IllegalArg(f"unknown command {' '.join(command)}")
    return 0


def _event_loop_runner() -> Callable[[Coroutine[Any, Any, int]], int]:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; this keeps other platforms working
        return asyncio.run
    return uvloop.run


def main(args: argparse.Namespace, environ: Mapping[str, str] | None = None, out: TextIO | None = None,
         err: TextIO | None = None) -> int:
    """Run one admin command: open the store, run the command, close the store. Returns the exit code."""
    environ = os.environ if environ is None else environ
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        url = store_url(args, environ)
    except (SettingsError, AdminError) as exc:
        print(f"error: {exc}", file=err)
        return 2

    async def run() -> int:
        try:
            store = await open_store(url)
        except ValueError as exc:
            raise IllegalArg(str(exc).replace(url, redact(url))) from None
        try:
            return await _run(args, store, out, err)
        finally:
            await store.close()

    try:
        return _event_loop_runner()(run())
    except AdminError as exc:
        print(f"error: {exc.message}", file=err)
        return exc.code
    except StoreError as exc:
        print(f"error: the store at {redact(url)} failed: {str(exc).replace(url, redact(url))}", file=err)
        return 3
