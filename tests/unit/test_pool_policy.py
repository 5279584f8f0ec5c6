"""The container pool's pure scheduling policy."""

from invoker.pool.policy import (
    ActionKey,
    Reject,
    Request,
    Slot,
    Start,
    UseWarm,
    Wait,
    evictions,
    prewarm_deficit,
    schedule,
    to_pause,
    to_remove,
    used_memory_mb,
)

A = ActionKey("guest", "guest/a", "1-aaa")
B = ActionKey("guest", "guest/b", "1-bbb")
C = ActionKey("guest", "guest/c", "1-ccc")
PY = "python:3.11"
NODE = "nodejs:22"


def warm(id: str, action: ActionKey, last_used: float = 0.0, busy: bool = False, memory: int = 256, **kw) -> Slot:
    return Slot(id, kw.pop("kind", PY), memory, action, busy=busy, last_used=last_used, **kw)


def prewarm(id: str, kind: str = PY, memory: int = 256, busy: bool = False, last_used: float = 0.0) -> Slot:
    return Slot(id, kind, memory, None, busy=busy, last_used=last_used)


def request(action: ActionKey = A, kind: str = PY, memory: int = 256) -> Request:
    return Request(action, kind, memory)


def test_an_idle_warm_container_of_the_same_action_is_reused():
    assert schedule(request(), [warm("w1", A)], 1024) == UseWarm("w1")


def test_the_most_recently_used_warm_container_is_chosen():
    slots = [warm("old", A, last_used=1), warm("new", A, last_used=5), warm("mid", A, last_used=3)]
    assert schedule(request(), slots, 2048) == UseWarm("new")


def test_warm_containers_are_not_shared_across_namespaces_actions_or_revisions():
    other_namespace = ActionKey("alice", A.doc_id, A.revision)
    other_revision = ActionKey(A.namespace, A.doc_id, "2-new")
    slots = [warm("ns", other_namespace), warm("rev", other_revision), warm("b", B)]
    assert schedule(request(), slots, 2048) == Start(None, ())


def test_a_busy_warm_container_is_not_reused():
    assert schedule(request(), [warm("w1", A, busy=True)], 1024) == Start(None, ())


def test_a_paused_warm_container_is_reused():
    assert schedule(request(), [warm("w1", A, paused=True)], 1024) == UseWarm("w1")


def test_a_prewarmed_container_of_the_same_kind_and_memory_is_taken():
    slots = [prewarm("node", kind=NODE), prewarm("small", memory=128), prewarm("py")]
    assert schedule(request(), slots, 1024) == Start("py", ())


def test_the_oldest_prewarmed_container_is_taken_first():
    slots = [prewarm("late", last_used=9), prewarm("early", last_used=2)]
    assert schedule(request(), slots, 1024) == Start("early", ())


def test_a_starting_prewarmed_container_cannot_be_taken():
    assert schedule(request(), [prewarm("starting", busy=True)], 1024) == Start(None, ())


def test_warm_wins_over_prewarm():
    assert schedule(request(), [prewarm("p"), warm("w", A)], 1024) == UseWarm("w")


def test_a_cold_start_happens_when_the_memory_fits():
    assert schedule(request(memory=256), [warm("b", B, busy=True, memory=256)], 512) == Start(None, ())


def test_prewarmed_containers_do_not_count_against_capacity():
    slots = [prewarm("p1", kind=NODE), prewarm("p2", kind=NODE)]
    assert used_memory_mb(slots) == 0
    assert schedule(request(), slots, 256) == Start(None, ())


def test_taking_a_prewarmed_container_needs_capacity():
    slots = [prewarm("p"), warm("b", B, busy=True)]
    assert schedule(request(), slots, 256) == Wait()


def test_least_recently_used_idle_containers_of_other_actions_are_evicted_until_it_fits():
    slots = [warm("b", B, last_used=5), warm("c", C, last_used=1), warm("busy", B, busy=True, last_used=0)]
    assert schedule(request(memory=256), slots, 768) == Start(None, ("c",))
    assert schedule(request(memory=512), slots, 768) == Start(None, ("c", "b"))


def test_eviction_then_a_matching_prewarm_is_taken():
    slots = [warm("b", B, last_used=1), prewarm("p")]
    assert schedule(request(), slots, 256) == Start("p", ("b",))


def test_it_waits_when_evicting_every_idle_container_would_not_make_room():
    slots = [warm("b", B, last_used=1), warm("c", C, busy=True)]
    assert schedule(request(memory=512), slots, 512) == Wait()
    assert evictions(slots, 512, 512) is None


def test_it_waits_when_everything_is_busy():
    slots = [warm("a1", A, busy=True), warm("a2", A, busy=True)]
    assert schedule(request(), slots, 512) == Wait()


def test_memory_larger_than_the_whole_capacity_is_rejected():
    decision = schedule(request(memory=512), [], 256)
    assert isinstance(decision, Reject)
    assert "512 MB" in decision.reason


def test_evictions_are_empty_when_it_fits_already():
    assert evictions([warm("b", B)], 256, 512) == ()


def test_idle_containers_past_the_pause_grace_are_paused_once():
    slots = [
        warm("idle", A, last_used=0),
        warm("recent", B, last_used=9),
        warm("busy", C, busy=True, last_used=0),
        warm("paused", C, last_used=0, paused=True),
        prewarm("p", last_used=0),
    ]
    assert to_pause(slots, now=10, pause_grace_s=5) == ["idle"]


def test_idle_containers_past_the_idle_timeout_are_removed_paused_or_not():
    slots = [
        warm("idle", A, last_used=0),
        warm("paused", B, last_used=0, paused=True),
        warm("recent", C, last_used=50),
        warm("busy", C, busy=True, last_used=0),
        prewarm("p", last_used=0),
    ]
    assert to_remove(slots, now=100, idle_timeout_s=60) == ["idle", "paused"]


def test_prewarms_are_replenished_per_kind_and_memory_counting_starting_ones():
    wanted = {(PY, 256): 2, (NODE, 256): 1, (PY, 128): 1}
    slots = [prewarm("p1"), prewarm("n1", kind=NODE, busy=True), warm("taken", A)]
    assert prewarm_deficit(wanted, slots) == {(PY, 256): 1, (PY, 128): 1}


def test_nothing_to_replenish_when_prewarms_are_complete():
    assert prewarm_deficit({(PY, 256): 1}, [prewarm("p1"), prewarm("extra")]) == {}
