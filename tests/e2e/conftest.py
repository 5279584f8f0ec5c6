from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.platform import Api, Platform

#: the container factories the end-to-end suite runs against
FACTORIES = ["process", "docker"]


@pytest.fixture(scope="session", params=FACTORIES)
def platform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    running = Platform(data_dir=tmp_path_factory.mktemp(f"standalone-{request.param}"), containers=request.param)
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
