"""The store contract: what every `Store` implementation does, written against the protocol only.

The last section holds the few tests that are about the SQLite file itself.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from whisk.entities.activation import APPLICATION_ERROR, ActivationResponse, WhiskActivation
from whisk.entities.feed import FeedRegistration
from whisk.entities.identity import (
    Identity,
    NamespaceKey,
    NamespaceLimits,
    Subject,
    generate_key,
    generate_uuid,
    hash_key,
)
from whisk.entities.params import KeyValue
from whisk.ids import new_activation_id
from whisk.store import Conflict, Document, NotFound, Store, Unavailable, open_store
from whisk.store.sqlite import SCHEMA_VERSION, SqliteStore

REV = re.compile(r"\A(\d+)-[0-9a-f]{32}\Z")


def generation(rev: str) -> int:
    match = REV.match(rev)
    assert match, f"revision {rev!r} is not n-hex"
    return int(match.group(1))


def action_body(namespace: str, name: str, updated: int, **extra: Any) -> dict[str, Any]:
    return {
        "namespace": namespace,
        "name": name,
        "version": "0.0.1",
        "publish": False,
        "exec": {"kind": "python:3.11", "code": "def main(args):\n    return args\n", "binary": False},
        "parameters": [{"key": "greeting", "value": "héllo ✓"}],
        "annotations": [],
        "limits": {"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1},
        "updated": updated,
        **extra,
    }


async def put_action(store: Store, namespace: str, name: str, updated: int, entity_type: str = "action") -> str:
    return await store.put_entity(f"{namespace}/{name}", entity_type, action_body(namespace, name, updated), None)


def ids(documents: list[Document]) -> list[str]:
    return [doc.doc_id for doc in documents]


class Credentials:
    """A subject with one namespace per name, and the clear keys the tests log in with."""

    def __init__(self, subject: str, *namespaces: str, blocked: bool = False) -> None:
        self.keys = {ns: (generate_uuid(), generate_key()) for ns in namespaces}
        self.subject = Subject(
            subject=subject,
            namespaces=[NamespaceKey(name=ns, uuid=u, key_hash=hash_key(k)) for ns, (u, k) in self.keys.items()],
            blocked=blocked,
        )

    def uuid(self, namespace: str) -> str:
        return self.keys[namespace][0]

    def key(self, namespace: str) -> str:
        return self.keys[namespace][1]


def make_activation(
    path: str = "guest/hello", start: int = 1_000, namespace: str = "guest", activation_id: str | None = None
) -> WhiskActivation:
    return WhiskActivation(
        namespace=namespace,
        name=path.rsplit("/", 1)[1],
        version="0.0.1",
        subject="guest-subject",
        activationId=activation_id or new_activation_id(),
        start=start,
        end=start + 7,
        response=ActivationResponse.success({"payload": "hi ✓"}, size=17),
        logs=["2024-01-01T00:00:00.000Z stdout: hi"],
        annotations=[KeyValue(key="path", value=path), KeyValue(key="kind", value="python:3.11")],
    )


def files_content(directory: Path) -> bytes:
    return b"".join(path.read_bytes() for path in directory.iterdir())


def activation_ids(activations: list[WhiskActivation]) -> list[str]:
    return [a.activationId for a in activations]


# entities: create, get, replace, delete


async def test_a_created_entity_comes_back_with_its_type_body_and_a_first_revision(store: Store) -> None:
    body = action_body("guest", "hello", 1_700_000_000_000)
    rev = await store.put_entity("guest/hello", "action", body, None)

    doc = await store.get_entity("guest/hello")

    assert generation(rev) == 1
    assert doc == Document("guest/hello", rev, "action", body)


async def test_an_entity_body_round_trips_any_json(store: Store) -> None:
    body = action_body(
        "guest",
        "odd",
        1,
        nested={"list": [1, 2.5, None, True, False, "ünï©ødé", {"deep": []}]},
        big=2**62,
        empty="",
    )
    await store.put_entity("guest/odd", "action", body, None)

    assert (await store.get_entity("guest/odd")).body == body


async def test_getting_a_missing_entity_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.get_entity("guest/nothing")


async def test_creating_an_entity_that_exists_is_a_conflict(store: Store) -> None:
    rev = await put_action(store, "guest", "hello", 1)

    with pytest.raises(Conflict):
        await store.put_entity("guest/hello", "action", action_body("guest", "hello", 2), None)

    doc = await store.get_entity("guest/hello")
    assert (doc.rev, doc.body["updated"]) == (rev, 1)


async def test_entity_types_share_one_id_space_so_a_trigger_cannot_take_an_actions_id(store: Store) -> None:
    await put_action(store, "guest", "hello", 1)

    with pytest.raises(Conflict):
        await store.put_entity("guest/hello", "trigger", {"namespace": "guest", "name": "hello", "updated": 2}, None)

    assert (await store.get_entity("guest/hello")).entity_type == "action"


async def test_replacing_with_the_current_revision_stores_the_body_and_counts_the_revision_up(store: Store) -> None:
    rev1 = await put_action(store, "guest", "hello", 1)
    new_body = action_body("guest", "hello", 2, version="0.0.2")

    rev2 = await store.put_entity("guest/hello", "action", new_body, rev1)
    rev3 = await store.put_entity("guest/hello", "action", new_body, rev2)

    assert [generation(r) for r in (rev1, rev2, rev3)] == [1, 2, 3]
    assert len({rev1, rev2, rev3}) == 3
    assert await store.get_entity("guest/hello") == Document("guest/hello", rev3, "action", new_body)


async def test_replacing_with_a_stale_revision_is_a_conflict_and_changes_nothing(store: Store) -> None:
    rev1 = await put_action(store, "guest", "hello", 1)
    rev2 = await store.put_entity("guest/hello", "action", action_body("guest", "hello", 2), rev1)

    with pytest.raises(Conflict):
        await store.put_entity("guest/hello", "action", action_body("guest", "hello", 3), rev1)

    doc = await store.get_entity("guest/hello")
    assert (doc.rev, doc.body["updated"]) == (rev2, 2)


async def test_replacing_with_a_revision_that_was_never_issued_is_a_conflict(store: Store) -> None:
    await put_action(store, "guest", "hello", 1)

    for rev in ("1-00000000000000000000000000000000", "9-deadbeefdeadbeefdeadbeefdeadbeef", "garbage", ""):
        with pytest.raises(Conflict):
            await store.put_entity("guest/hello", "action", action_body("guest", "hello", 2), rev)


async def test_replacing_an_entity_that_does_not_exist_is_a_conflict_as_in_couchdb(store: Store) -> None:
    with pytest.raises(Conflict):
        await store.put_entity("guest/ghost", "action", action_body("guest", "ghost", 1), "1-" + "a" * 32)

    with pytest.raises(NotFound):
        await store.get_entity("guest/ghost")


async def test_deleting_at_the_current_revision_removes_the_entity(store: Store) -> None:
    rev = await put_action(store, "guest", "hello", 1)

    await store.delete_entity("guest/hello", rev)

    with pytest.raises(NotFound):
        await store.get_entity("guest/hello")
    with pytest.raises(NotFound):
        await store.delete_entity("guest/hello", rev)
    assert await store.count_entities("guest", "action") == 0


async def test_deleting_at_a_stale_revision_is_a_conflict_and_keeps_the_entity(store: Store) -> None:
    rev1 = await put_action(store, "guest", "hello", 1)
    rev2 = await store.put_entity("guest/hello", "action", action_body("guest", "hello", 2), rev1)

    with pytest.raises(Conflict):
        await store.delete_entity("guest/hello", rev1)

    assert (await store.get_entity("guest/hello")).rev == rev2


async def test_deleting_a_missing_entity_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.delete_entity("guest/nothing", "1-" + "0" * 32)


async def test_a_deleted_entity_can_be_created_again(store: Store) -> None:
    rev = await put_action(store, "guest", "hello", 1)
    await store.delete_entity("guest/hello", rev)

    new_rev = await put_action(store, "guest", "hello", 5)

    assert (await store.get_entity("guest/hello")).rev == new_rev
    assert new_rev != rev


# entities: list and count


async def test_entities_are_listed_newest_update_first_with_ties_in_descending_id_order(store: Store) -> None:
    await put_action(store, "guest", "b", 20)
    await put_action(store, "guest", "old", 10)
    await put_action(store, "guest", "a", 20)
    await put_action(store, "guest", "new", 30)
    await put_action(store, "guest", "c", 20)

    listed = await store.list_entities("guest", "action", 0, 0)

    assert ids(listed) == ["guest/new", "guest/c", "guest/b", "guest/a", "guest/old"]
    assert listed[0] == await store.get_entity("guest/new")


async def test_replacing_an_entity_moves_it_by_its_new_update_time(store: Store) -> None:
    rev = await put_action(store, "guest", "first", 1)
    await put_action(store, "guest", "second", 2)

    await store.put_entity("guest/first", "action", action_body("guest", "first", 3), rev)

    assert ids(await store.list_entities("guest", "action", 0, 0)) == ["guest/first", "guest/second"]


async def test_limit_and_skip_page_through_entities_and_a_zero_limit_means_all(store: Store) -> None:
    for i in range(7):
        await put_action(store, "guest", f"a{i}", i)
    newest_first = [f"guest/a{i}" for i in reversed(range(7))]

    assert ids(await store.list_entities("guest", "action", 3, 0)) == newest_first[:3]
    assert ids(await store.list_entities("guest", "action", 3, 3)) == newest_first[3:6]
    assert ids(await store.list_entities("guest", "action", 3, 6)) == newest_first[6:]
    assert ids(await store.list_entities("guest", "action", 0, 2)) == newest_first[2:]
    assert ids(await store.list_entities("guest", "action", 0, 0)) == newest_first
    assert await store.list_entities("guest", "action", 5, 7) == []
    assert await store.count_entities("guest", "action") == 7


async def test_a_namespace_lists_its_packages_entities_and_a_package_only_its_own(store: Store) -> None:
    await put_action(store, "guest", "top", 1)
    await put_action(store, "guest/utils", "date", 2)
    await put_action(store, "guest/utils", "time", 3)
    await put_action(store, "guest/other", "x", 4)
    await put_action(store, "guest2", "near", 5)
    await put_action(store, "guest2/utils", "date", 6)
    await put_action(store, "gues", "prefix", 7)

    assert ids(await store.list_entities("guest", "action", 0, 0)) == [
        "guest/other/x",
        "guest/utils/time",
        "guest/utils/date",
        "guest/top",
    ]
    assert ids(await store.list_entities("guest/utils", "action", 0, 0)) == ["guest/utils/time", "guest/utils/date"]
    assert await store.count_entities("guest", "action") == 4
    assert await store.count_entities("guest/utils", "action") == 2
    assert await store.count_entities("guest/none", "action") == 0
    assert await store.list_entities("nobody", "action", 0, 0) == []


async def test_entity_types_are_listed_and_counted_apart(store: Store) -> None:
    await put_action(store, "guest", "act", 1)
    await put_action(store, "guest", "pkg", 2, entity_type="package")
    await put_action(store, "guest", "trg", 3, entity_type="trigger")
    await put_action(store, "guest", "rul", 4, entity_type="rule")

    for entity_type, name in [("action", "act"), ("package", "pkg"), ("trigger", "trg"), ("rule", "rul")]:
        listed = await store.list_entities("guest", entity_type, 0, 0)
        assert [(d.doc_id, d.entity_type) for d in listed] == [(f"guest/{name}", entity_type)]
        assert await store.count_entities("guest", entity_type) == 1


# subjects and identities


async def test_a_subject_is_created_read_and_replaced_with_revisions(store: Store) -> None:
    creds = Credentials("alice", "alice-ns")
    rev1 = await store.put_subject(creds.subject)

    assert await store.get_subject("alice") == (creds.subject, rev1)

    changed = creds.subject.model_copy(update={"limits": {"alice-ns": NamespaceLimits(invocationsPerMinute=7)}})
    rev2 = await store.put_subject(changed, rev1)

    assert [generation(rev1), generation(rev2)] == [1, 2]
    assert await store.get_subject("alice") == (changed, rev2)


async def test_writing_a_subject_without_the_current_revision_is_a_conflict(store: Store) -> None:
    creds = Credentials("alice", "alice-ns")
    rev1 = await store.put_subject(creds.subject)
    rev2 = await store.put_subject(creds.subject, rev1)

    with pytest.raises(Conflict):
        await store.put_subject(creds.subject)
    with pytest.raises(Conflict):
        await store.put_subject(creds.subject, rev1)
    with pytest.raises(Conflict):
        await store.put_subject(Credentials("bob", "bob-ns").subject, rev1)

    assert (await store.get_subject("alice"))[1] == rev2
    with pytest.raises(NotFound):
        await store.get_subject("bob")


async def test_getting_a_missing_subject_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.get_subject("nobody")


async def test_the_right_key_resolves_to_the_identity_with_default_limits(store: Store) -> None:
    creds = Credentials("alice", "alice-ns")
    await store.put_subject(creds.subject)

    identity = await store.identity_by_key(creds.uuid("alice-ns"), creds.key("alice-ns"))

    assert identity == Identity(subject="alice", namespace="alice-ns", uuid=creds.uuid("alice-ns"))
    assert identity.limits == NamespaceLimits()


async def test_each_namespace_of_a_subject_resolves_with_its_own_key_and_limits(store: Store) -> None:
    creds = Credentials("alice", "alice-ns", "alice-work")
    limits = NamespaceLimits(invocationsPerMinute=5, concurrentInvocations=2, firesPerMinute=9)
    await store.put_subject(creds.subject.model_copy(update={"limits": {"alice-work": limits}}))

    personal = await store.identity_by_key(creds.uuid("alice-ns"), creds.key("alice-ns"))
    work = await store.identity_by_key(creds.uuid("alice-work"), creds.key("alice-work"))

    assert (personal.namespace, personal.limits) == ("alice-ns", NamespaceLimits())
    assert (work.namespace, work.uuid, work.limits) == ("alice-work", creds.uuid("alice-work"), limits)
    with pytest.raises(NotFound):
        await store.identity_by_key(creds.uuid("alice-ns"), creds.key("alice-work"))


async def test_a_wrong_key_or_an_unknown_uuid_is_not_found(store: Store) -> None:
    creds = Credentials("alice", "alice-ns")
    await store.put_subject(creds.subject)

    for uuid, key in [
        (creds.uuid("alice-ns"), generate_key()),
        (creds.uuid("alice-ns"), ""),
        (creds.uuid("alice-ns"), hash_key(creds.key("alice-ns"))),
        (generate_uuid(), creds.key("alice-ns")),
        (generate_uuid(), ""),
    ]:
        with pytest.raises(NotFound):
            await store.identity_by_key(uuid, key)


async def test_the_identity_of_a_namespace_is_found_by_its_name(store: Store) -> None:
    creds = Credentials("alice", "alice-ns", "alice-work")
    limits = NamespaceLimits(concurrentInvocations=3)
    await store.put_subject(creds.subject.model_copy(update={"limits": {"alice-work": limits}}))

    identity = await store.identity_by_namespace("alice-work")

    assert identity == Identity(subject="alice", namespace="alice-work", uuid=creds.uuid("alice-work"), limits=limits)
    with pytest.raises(NotFound):
        await store.identity_by_namespace("nobody")


async def test_a_blocked_subject_has_no_identity_until_unblocked(store: Store) -> None:
    creds = Credentials("mallory", "mallory-ns", blocked=True)
    rev = await store.put_subject(creds.subject)

    with pytest.raises(NotFound):
        await store.identity_by_key(creds.uuid("mallory-ns"), creds.key("mallory-ns"))
    with pytest.raises(NotFound):
        await store.identity_by_namespace("mallory-ns")
    assert (await store.get_subject("mallory"))[0].blocked

    await store.put_subject(creds.subject.model_copy(update={"blocked": False}), rev)

    assert (await store.identity_by_key(creds.uuid("mallory-ns"), creds.key("mallory-ns"))).subject == "mallory"
    assert (await store.identity_by_namespace("mallory-ns")).subject == "mallory"


async def test_a_namespace_name_taken_by_another_subject_is_a_conflict_and_nothing_is_written(store: Store) -> None:
    alice = Credentials("alice", "shared")
    await store.put_subject(alice.subject)
    bob = Credentials("bob", "bob-ns", "shared")

    with pytest.raises(Conflict):
        await store.put_subject(bob.subject)

    with pytest.raises(NotFound):
        await store.get_subject("bob")
    with pytest.raises(NotFound):
        await store.identity_by_namespace("bob-ns")
    assert (await store.identity_by_namespace("shared")).subject == "alice"


async def test_a_uuid_taken_by_another_subject_is_a_conflict(store: Store) -> None:
    alice = Credentials("alice", "alice-ns")
    await store.put_subject(alice.subject)
    stolen = NamespaceKey(name="bob-ns", uuid=alice.uuid("alice-ns"), key_hash=hash_key(generate_key()))

    with pytest.raises(Conflict):
        await store.put_subject(Subject(subject="bob", namespaces=[stolen]))

    identity = await store.identity_by_key(alice.uuid("alice-ns"), alice.key("alice-ns"))
    assert identity.subject == "alice"


async def test_a_namespace_clash_on_replace_is_a_conflict_and_keeps_the_previous_subject(store: Store) -> None:
    await store.put_subject(Credentials("alice", "alice-ns").subject)
    bob = Credentials("bob", "bob-ns")
    rev = await store.put_subject(bob.subject)
    grabbing = Credentials("bob", "bob-ns2", "alice-ns").subject

    with pytest.raises(Conflict):
        await store.put_subject(grabbing, rev)

    assert await store.get_subject("bob") == (bob.subject, rev)
    assert (await store.identity_by_key(bob.uuid("bob-ns"), bob.key("bob-ns"))).namespace == "bob-ns"
    with pytest.raises(NotFound):
        await store.identity_by_namespace("bob-ns2")


async def test_replacing_a_subject_releases_the_namespaces_and_keys_it_no_longer_has(store: Store) -> None:
    old = Credentials("alice", "alice-ns")
    rev = await store.put_subject(old.subject)
    new = Credentials("alice", "alice-new")

    await store.put_subject(new.subject, rev)

    with pytest.raises(NotFound):
        await store.identity_by_key(old.uuid("alice-ns"), old.key("alice-ns"))
    assert (await store.identity_by_key(new.uuid("alice-new"), new.key("alice-new"))).namespace == "alice-new"
    await store.put_subject(Credentials("bob", "alice-ns").subject)
    assert (await store.identity_by_namespace("alice-ns")).subject == "bob"


async def test_deleting_a_subject_removes_it_and_its_identities(store: Store) -> None:
    creds = Credentials("alice", "alice-ns", "alice-work")
    rev = await store.put_subject(creds.subject)

    await store.delete_subject("alice", rev)

    with pytest.raises(NotFound):
        await store.get_subject("alice")
    with pytest.raises(NotFound):
        await store.identity_by_key(creds.uuid("alice-ns"), creds.key("alice-ns"))
    with pytest.raises(NotFound):
        await store.identity_by_namespace("alice-work")
    await store.put_subject(Credentials("bob", "alice-ns").subject)


async def test_deleting_a_subject_at_a_stale_revision_is_a_conflict_and_a_missing_one_not_found(store: Store) -> None:
    creds = Credentials("alice", "alice-ns")
    rev1 = await store.put_subject(creds.subject)
    await store.put_subject(creds.subject, rev1)

    with pytest.raises(Conflict):
        await store.delete_subject("alice", rev1)
    assert (await store.identity_by_namespace("alice-ns")).subject == "alice"
    with pytest.raises(NotFound):
        await store.delete_subject("nobody", rev1)


async def test_a_key_is_never_stored_in_clear(store: Store) -> None:
    creds = Credentials("alice", "alice-ns", "alice-work")
    await store.put_subject(creds.subject)

    stored, _ = await store.get_subject("alice")

    dump = stored.model_dump_json()
    for namespace in ("alice-ns", "alice-work"):
        assert creds.key(namespace) not in dump
        assert hash_key(creds.key(namespace)) in dump


# activations


async def test_a_stored_activation_comes_back_equal_in_its_store_form(store: Store) -> None:
    activation = make_activation()
    activation.response = ActivationResponse.application_error("boom")
    await store.put_activation(activation)

    got = await store.get_activation("guest", activation.activationId)

    assert got == activation
    assert got.model_dump()["response"]["statusCode"] == APPLICATION_ERROR


async def test_storing_an_activation_id_twice_in_a_namespace_is_a_conflict(store: Store) -> None:
    first = make_activation(start=1)
    await store.put_activation(first)

    with pytest.raises(Conflict):
        await store.put_activation(make_activation(start=2, activation_id=first.activationId))

    assert (await store.get_activation("guest", first.activationId)).start == 1
    await store.put_activation(make_activation("other/hello", namespace="other", activation_id=first.activationId))
    assert await store.count_activations("other") == 1


async def test_a_missing_activation_or_one_of_another_namespace_is_not_found(store: Store) -> None:
    activation = make_activation()
    await store.put_activation(activation)

    with pytest.raises(NotFound):
        await store.get_activation("guest", new_activation_id())
    with pytest.raises(NotFound):
        await store.get_activation("other", activation.activationId)


async def test_activations_are_listed_newest_start_first_thirty_by_default(store: Store) -> None:
    activations = [make_activation(start=1_000 + (i * 7919) % 40) for i in range(40)]
    await asyncio.gather(*(store.put_activation(a) for a in activations))
    await store.put_activation(make_activation("other/hello", namespace="other", start=5_000))
    expected = sorted(activations, key=lambda a: (a.start, a.activationId), reverse=True)

    listed = await store.list_activations("guest")

    assert activation_ids(listed) == activation_ids(expected[:30])
    assert listed[0] == expected[0]
    assert activation_ids(await store.list_activations("guest", limit=0)) == activation_ids(expected)
    assert await store.count_activations("guest") == 40


async def test_activations_with_equal_starts_are_listed_in_descending_id_order(store: Store) -> None:
    same = [make_activation(start=100, activation_id=f"{i:032x}") for i in (3, 1, 2)]
    for activation in same:
        await store.put_activation(activation)

    assert activation_ids(await store.list_activations("guest")) == [f"{i:032x}" for i in (3, 2, 1)]


async def test_limit_and_skip_page_through_activations(store: Store) -> None:
    activations = [make_activation(start=i) for i in range(10)]
    for activation in activations:
        await store.put_activation(activation)
    newest_first = activation_ids(activations)[::-1]

    assert activation_ids(await store.list_activations("guest", limit=4)) == newest_first[:4]
    assert activation_ids(await store.list_activations("guest", limit=4, skip=4)) == newest_first[4:8]
    assert activation_ids(await store.list_activations("guest", limit=4, skip=8)) == newest_first[8:]
    assert activation_ids(await store.list_activations("guest", limit=0, skip=3)) == newest_first[3:]
    assert await store.list_activations("guest", skip=10) == []


async def test_a_name_matches_an_action_or_a_package_action_by_its_path(store: Store) -> None:
    top = make_activation("guest/hello", start=1)
    in_pkg = make_activation("guest/utils/hello", start=2)
    shared = make_activation("whisk.system/utils/hello", start=3)
    other = make_activation("guest/bye", start=4)
    for activation in (top, in_pkg, shared, other):
        await store.put_activation(activation)

    assert activation_ids(await store.list_activations("guest", name="hello")) == [top.activationId]
    assert activation_ids(await store.list_activations("guest", name="utils/hello")) == [
        shared.activationId,
        in_pkg.activationId,
    ]
    assert await store.list_activations("guest", name="nope") == []
    assert await store.count_activations("guest", name="utils/hello") == 2
    assert await store.count_activations("guest", name="bye") == 1


async def test_since_and_upto_are_inclusive_bounds_on_start(store: Store) -> None:
    by_start = {start: make_activation(start=start) for start in (10, 20, 30, 40, 50)}
    for activation in by_start.values():
        await store.put_activation(activation)

    def at(*starts: int) -> list[str]:
        return [by_start[s].activationId for s in starts]

    assert activation_ids(await store.list_activations("guest", since=20, upto=40)) == at(40, 30, 20)
    assert activation_ids(await store.list_activations("guest", since=41)) == at(50)
    assert activation_ids(await store.list_activations("guest", upto=10)) == at(10)
    assert await store.list_activations("guest", since=51) == []
    assert await store.count_activations("guest", since=20, upto=40) == 3
    assert await store.count_activations("guest", since=30) == 3
    assert await store.count_activations("guest", upto=29) == 2


async def test_all_activation_filters_combine_with_paging(store: Store) -> None:
    wanted = [make_activation("guest/p/a", start=s) for s in range(0, 100, 10)]
    noise = [make_activation("guest/a", start=s) for s in range(0, 100, 10)]
    for activation in wanted + noise:
        await store.put_activation(activation)
    in_range = [a.activationId for a in reversed(wanted) if 20 <= a.start <= 70]

    listed = await store.list_activations("guest", name="p/a", since=20, upto=70, limit=2, skip=1)

    assert activation_ids(listed) == in_range[1:3]
    assert await store.count_activations("guest", name="p/a", since=20, upto=70) == len(in_range)
    assert await store.count_activations("nobody") == 0


async def test_bounds_and_pages_beyond_64_bits_are_just_very_large(store: Store) -> None:
    await store.put_activation(make_activation(start=5))
    await put_action(store, "guest", "hello", 1)
    huge = 10**30

    assert len(await store.list_activations("guest", since=-huge, upto=huge, limit=huge)) == 1
    assert await store.list_activations("guest", since=huge) == []
    assert await store.list_activations("guest", skip=huge) == []
    assert await store.count_activations("guest", upto=-huge) == 0
    assert len(await store.list_entities("guest", "action", huge, 0)) == 1
    assert await store.list_entities("guest", "action", 1, huge) == []


# concurrency and lifecycle


async def test_many_concurrent_writes_all_land(store: Store) -> None:
    activations = [make_activation(start=i) for i in range(200)]

    revs = await asyncio.gather(
        *(put_action(store, "guest", f"a{i}", i) for i in range(200)),
        *(store.put_activation(a) for a in activations),
    )

    assert all(generation(rev) == 1 for rev in revs[:200])
    assert await store.count_entities("guest", "action") == 200
    assert await store.count_activations("guest") == 200
    assert len(await store.list_entities("guest", "action", 0, 0)) == 200


async def test_concurrent_replaces_from_one_revision_let_exactly_one_win(store: Store) -> None:
    rev = await put_action(store, "guest", "hello", 0)

    results = await asyncio.gather(
        *(store.put_entity("guest/hello", "action", action_body("guest", "hello", i), rev) for i in range(1, 21)),
        return_exceptions=True,
    )

    winners = [r for r in results if isinstance(r, str)]
    assert len(winners) == 1
    assert all(isinstance(r, Conflict) for r in results if not isinstance(r, str))
    assert (await store.get_entity("guest/hello")).rev == winners[0]


async def test_closing_twice_is_harmless(store: Store) -> None:
    await store.close()
    await store.close()


# SQLite only: the file itself


async def test_sqlite_data_survives_closing_and_reopening_the_file(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/deep/er/store.db"
    creds = Credentials("alice", "alice-ns")
    activation = make_activation()
    store = await open_store(url)
    entity_rev = await put_action(store, "guest", "hello", 1)
    subject_rev = await store.put_subject(creds.subject)
    await store.put_activation(activation)
    await store.close()

    store = await open_store(url)
    try:
        assert (await store.get_entity("guest/hello")).rev == entity_rev
        assert await store.get_subject("alice") == (creds.subject, subject_rev)
        assert (await store.identity_by_key(creds.uuid("alice-ns"), creds.key("alice-ns"))).subject == "alice"
        assert await store.get_activation("guest", activation.activationId) == activation
        new_rev = await store.put_entity("guest/hello", "action", action_body("guest", "hello", 2), entity_rev)
        assert generation(new_rev) == 2
    finally:
        await store.close()


async def test_sqlite_keeps_a_schema_version_in_a_wal_mode_file(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    for _ in range(2):
        store = await SqliteStore.open(f"sqlite://{path}")
        await store.close()

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


async def test_sqlite_refuses_a_file_with_a_newer_schema_or_that_is_not_a_database(tmp_path: Path) -> None:
    newer = tmp_path / "newer.db"
    with sqlite3.connect(newer) as conn:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database file" * 100)

    for path in (newer, garbage):
        with pytest.raises(Unavailable):
            await SqliteStore.open(f"sqlite://{path}")


async def test_sqlite_opens_relative_and_in_memory_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for url in ("sqlite:data/relative.db", "sqlite::memory:"):
        store = await SqliteStore.open(url)
        try:
            await put_action(store, "guest", "hello", 1)
            assert await store.count_entities("guest", "action") == 1
        finally:
            await store.close()
    assert (tmp_path / "data" / "relative.db").is_file()


@pytest.mark.parametrize("url", ["sqlite:", "sqlite://host/db.sqlite", "sqlite:dir/", "postgres:///x.db"])
async def test_sqlite_rejects_urls_that_name_no_file(url: str) -> None:
    with pytest.raises(ValueError):
        await open_store(url)


async def test_sqlite_never_writes_a_clear_key_to_disk(tmp_path: Path) -> None:
    creds = Credentials("alice", "alice-ns")
    store = await SqliteStore.open(f"sqlite://{tmp_path}/store.db")
    await store.put_subject(creds.subject)
    await store.close()

    written = files_content(tmp_path)
    assert creds.key("alice-ns").encode() not in written
    assert hash_key(creds.key("alice-ns")).encode() in written


async def test_sqlite_calls_after_close_are_unavailable(tmp_path: Path) -> None:
    store = await SqliteStore.open(f"sqlite://{tmp_path}/store.db")
    await store.close()

    with pytest.raises(Unavailable):
        await store.get_entity("guest/hello")


async def test_invoker_ids_are_the_lowest_free_ones_and_stable_per_name(store: Store) -> None:
    assert await store.assign_invoker_id("host-a") == 0
    assert await store.assign_invoker_id("host-b") == 1
    assert await store.assign_invoker_id("host-a") == 0


async def test_concurrent_invokers_get_distinct_ids(store: Store) -> None:
    import asyncio

    ids = await asyncio.gather(*(store.assign_invoker_id(f"host-{n}") for n in range(8)))
    assert sorted(ids) == list(range(8))


# feed registrations


def feed_registration(trigger: str = "guest/ticks", **extra: Any) -> FeedRegistration:
    return FeedRegistration(
        trigger=trigger,
        feed="couchdb/changes",
        authKey="7cc3bb0f-0000-4000-8000-000000000001:secret-key",
        config={"url": "http://127.0.0.1:5984", "dbname": "orders", "username": "u", "password": "p ✓"},
        **extra,
    )


async def test_a_created_feed_registration_comes_back_whole_with_a_first_revision(store: Store) -> None:
    registration = feed_registration(cursor=7)

    rev = await store.put_feed(registration, None)

    assert generation(rev) == 1
    assert await store.get_feed("guest/ticks") == (registration, rev)


async def test_a_trigger_has_one_feed_registration_and_a_stale_revision_is_a_conflict(store: Store) -> None:
    first = await store.put_feed(feed_registration(), None)
    with pytest.raises(Conflict):
        await store.put_feed(feed_registration(), None)

    paused = feed_registration().inactive("paused by the user", kind="USER")
    second = await store.put_feed(paused, first)
    with pytest.raises(Conflict):
        await store.put_feed(feed_registration(), first)

    assert generation(second) == 2
    assert await store.get_feed("guest/ticks") == (paused, second)


async def test_a_feed_registration_is_deleted_at_its_revision_only(store: Store) -> None:
    rev = await store.put_feed(feed_registration(), None)
    with pytest.raises(NotFound):
        await store.get_feed("guest/other")
    with pytest.raises(NotFound):
        await store.delete_feed("guest/other", rev)
    with pytest.raises(Conflict):
        await store.delete_feed("guest/ticks", "1-" + "0" * 32)

    await store.delete_feed("guest/ticks", rev)

    with pytest.raises(NotFound):
        await store.get_feed("guest/ticks")
    recreated = feed_registration()
    rev = await store.put_feed(recreated, None)
    assert await store.get_feed("guest/ticks") == (recreated, rev)


async def test_feed_registrations_are_listed_in_trigger_order_active_or_not(store: Store) -> None:
    for trigger in ("bob/b", "alice/a", "alice/c"):
        registration = feed_registration(trigger)
        await store.put_feed(registration.inactive("off") if trigger == "alice/c" else registration, None)

    listed = await store.list_feeds()

    assert [registration.trigger for registration, _ in listed] == ["alice/a", "alice/c", "bob/b"]
    assert [registration.status.active for registration, _ in listed] == [True, False, True]
    for registration, rev in listed:
        assert await store.get_feed(registration.trigger) == (registration, rev)


async def test_a_trigger_entity_and_its_feed_registration_do_not_share_an_id(store: Store) -> None:
    await put_action(store, "guest", "ticks", 1, entity_type="triggers")
    await store.put_feed(feed_registration(), None)

    assert (await store.get_entity("guest/ticks")).entity_type == "triggers"
    assert (await store.get_feed("guest/ticks"))[0].feed == "couchdb/changes"


async def test_advancing_a_cursor_keeps_a_concurrent_change_and_outdates_its_revision(store: Store) -> None:
    registration = feed_registration()
    rev = await store.put_feed(registration, None)
    paused = registration.inactive("paused")
    paused_rev = await store.put_feed(paused, rev)

    assert await store.advance_feed_cursor("guest/ticks", registration.id, "12-g1AAAA") is True
    assert await store.advance_feed_cursor("guest/ticks", registration.id, 13) is True

    stored, stored_rev = await store.get_feed("guest/ticks")
    assert stored == paused.model_copy(update={"cursor": 13})
    assert generation(stored_rev) == 4
    with pytest.raises(Conflict):
        await store.put_feed(registration, paused_rev)


async def test_a_cursor_is_never_written_to_another_registration_of_the_trigger(store: Store) -> None:
    old = feed_registration()
    rev = await store.put_feed(old, None)
    await store.delete_feed("guest/ticks", rev)
    new = feed_registration()
    await store.put_feed(new, None)

    assert await store.advance_feed_cursor("guest/ticks", old.id, 99) is False
    assert await store.advance_feed_cursor("guest/missing", old.id, 99) is False
    assert (await store.get_feed("guest/ticks"))[0].cursor is None


async def test_concurrent_cursor_advances_all_land_and_the_last_one_wins(store: Store) -> None:
    registration = feed_registration()
    await store.put_feed(registration, None)

    results = await asyncio.gather(*(store.advance_feed_cursor("guest/ticks", registration.id, n) for n in range(5)))

    assert results == [True] * 5
    assert (await store.get_feed("guest/ticks"))[0].cursor in range(5)


def test_a_feed_registration_never_shows_its_key_or_password() -> None:
    registration = feed_registration()

    public = registration.public()

    assert "secret-key" not in repr(registration) and "p ✓" not in repr(registration)
    assert "secret-key" not in json.dumps(public) and "p ✓" not in json.dumps(public)
    assert public["config"] == {"url": "http://127.0.0.1:5984", "dbname": "orders", "username": "u",
                                "name": "ticks", "namespace": "guest"}
    assert public["status"]["active"] is True
