"""Start-up helpers of the distributed processes."""

from pathlib import Path

from pywhisk.services import with_invoker_id
from whisk.config import InvokerSettings
from whisk.store import open_store


async def test_an_auto_invoker_id_comes_from_the_store_and_an_explicit_one_is_kept(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        auto = InvokerSettings.from_env({"PYWHISK_INVOKER_ID": "auto"})
        first = await with_invoker_id(auto, store)
        again = await with_invoker_id(auto, store)
        assert isinstance(first.invoker_id, int) and first.invoker_id == again.invoker_id
        explicit = InvokerSettings.from_env({"PYWHISK_INVOKER_ID": "7"})
        assert (await with_invoker_id(explicit, store)).invoker_id == 7
    finally:
        await store.close()
