"""Entity caches of several controllers stay consistent through the cache-invalidation topic."""

import asyncio
from pathlib import Path

from controller.context import EntityCache
from whisk.bus.local import LocalBus
from whisk.store import open_store


async def test_a_write_through_one_controller_invalidates_the_cache_of_another(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    bus = LocalBus()
    first, second = EntityCache(store, bus, "0"), EntityCache(store, bus, "1")
    await first.start()
    await second.start()
    try:
        body = {"namespace": "guest", "name": "a", "updated": 1}
        rev = await store.put_entity("guest/a", "actions", body, None)
        assert (await first.get("guest/a")).rev == rev
        assert (await second.get("guest/a")).rev == rev

        new_rev = await store.put_entity("guest/a", "actions", {**body, "updated": 2}, rev)
        await second.invalidate("guest/a")
        assert (await second.get("guest/a")).rev == new_rev
        for _ in range(100):
            if (await first.get("guest/a")).rev == new_rev:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the first controller kept the stale entity")
    finally:
        await first.close()
        await second.close()
        await bus.close()
        await store.close()
