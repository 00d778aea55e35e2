"""Shared fixtures. `s3_server` is a real SeaweedFS S3 server (storage/s3_server.py) started
once per session on free ports in a temporary folder, only by tests that ask for it; its
start-up may take as long as the machine's load makes it (tests/patience.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from patience import patience
from sandforge.storage import s3_server

TEST_BUCKET = "sandforge-test"


@pytest.fixture(scope="session", autouse=True)
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Bundles are signed on publish: the whole session (and the sandforge subprocesses it
    starts) uses one local key in a temporary folder, never .sandforge/keys/ of the checkout."""
    from sandforge.storage import signing

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(signing.KEY_FILE_ENV, str(tmp_path_factory.mktemp("keys") / "signing.pem"))
        patch.delenv(signing.KEY_ENV, raising=False)
        patch.delenv(signing.TRUSTED_ENV, raising=False)
        yield


@pytest.fixture(scope="session")
def s3_server_status(tmp_path_factory: pytest.TempPathFactory) -> Iterator[s3_server.ServerStatus]:
    data_dir = tmp_path_factory.mktemp("s3-server")
    status = s3_server.up(
        data_dir, port=s3_server.free_port(), timeout=patience(s3_server.START_TIMEOUT)
    )
    try:
        yield status
    finally:
        s3_server.down(data_dir)


@pytest.fixture
def s3_env(
    s3_server_status: s3_server.ServerStatus, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Point S3Store (endpoint, credentials) at the test server through the environment."""
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(var, raising=False)
    env = s3_server_status.env()
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    return env


@pytest.fixture
def s3_url(s3_env: dict[str, str]) -> str:
    """`s3://sandforge-test/<fresh prefix>`: every test gets an empty store."""
    from sandforge.storage.s3 import S3Store

    S3Store(TEST_BUCKET).create_bucket()
    return f"s3://{TEST_BUCKET}/t-{uuid.uuid4().hex[:10]}"
