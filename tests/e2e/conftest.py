from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.distributed import DistributedPlatform
from tests.e2e.platform import Api, Platform

#: the platforms the end-to-end suite runs against: standalone on each container factory, and the distributed
#: stack (CouchDB-compatible store, Kafka-protocol broker, controller and invoker processes, nginx in front)
PLATFORMS = ["process", "docker", "distributed"]


@pytest.fixture(scope="session", params=PLATFORMS)
def platform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    data_dir = tmp_path_factory.mktemp(f"platform-{request.param}")
    running: Platform | DistributedPlatform
    if request.param == "distributed":
        running = DistributedPlatform(data_dir=data_dir)
    else:
        running = Platform(data_dir=data_dir, containers=request.param)
    running.start()
    yield running
    running.stop()


@pytest.fixture
async def api(platform: Platform) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(platform, session)


@pytest.fixture
def fresh_platform(tmp_path: Path) -> Iterator[Platform]:
    """A platform of its own, for tests that stop and restart it."""
    own = Platform(data_dir=tmp_path / "standalone", containers="process")
    yield own
    own.stop()
