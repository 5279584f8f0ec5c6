from controller.balancer.schedule import InvokerState, coprime_steps, schedule, walk


def states(*free: int, unhealthy: tuple[int, ...] = ()) -> list[InvokerState]:
    return [InvokerState(id=i, healthy=i not in unhealthy, free_mb=f) for i, f in enumerate(free)]


def test_the_walk_of_the_worked_example_visits_every_invoker_once() -> None:
    assert coprime_steps(10) == [1, 3, 7, 9]
    assert walk(10, 13) == [3, 6, 9, 2, 5, 8, 1, 4, 7, 0]
    for n in range(1, 12):
        for h in range(50):
            assert sorted(walk(n, h)) == list(range(n))


def test_the_home_invoker_takes_the_activation_when_it_has_room() -> None:
    assert schedule(states(512, 512, 512), 4, 256) == 4 % 3


def test_a_full_or_unhealthy_home_passes_the_activation_along_the_walk() -> None:
    order = walk(4, 7)
    full_home = states(*[0 if i == order[0] else 512 for i in range(4)])
    assert schedule(full_home, 7, 256) == order[1]
    sick_home = states(512, 512, 512, 512, unhealthy=(order[0],))
    assert schedule(sick_home, 7, 256) == order[1]


def test_when_nobody_has_room_a_healthy_invoker_is_overloaded_and_none_without_health() -> None:
    chosen = schedule(states(0, 0, 0, unhealthy=(1,)), 5, 256)
    assert chosen in (0, 2)
    assert schedule(states(512, 512, unhealthy=(0, 1)), 5, 256) is None
    assert schedule([], 5, 256) is None
