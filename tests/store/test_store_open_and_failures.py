"""Choosing a backend by URL, and failing clearly: bad URLs, unreachable or hanging servers,
wrong or missing credentials. None of these leaves anything behind."""

from __future__ import annotations

import os
import re
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import botocore.endpoint
import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber

from orgmem.config import Settings
from orgmem.errors import NotFoundError, OrgmemError
from orgmem.store import StoreAccessError, StoreUnavailableError, open_store, register_backend
from orgmem.store.file import LocalFolderStore
from orgmem.store.s3 import S3Options, S3Store


def test_default_store_is_local_folder_under_home() -> None:
    store = open_store()
    assert isinstance(store, LocalFolderStore)
    assert store.root == Path(os.environ["ORGMEM_HOME"]) / "store"


def test_store_url_setting_is_used(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ORGMEM_STORE_URL", (tmp_path / "elsewhere").as_uri())
    from orgmem.config import get_settings

    get_settings.cache_clear()
    store = open_store()
    store.put("k", b"v")
    assert (tmp_path / "elsewhere" / "k").read_bytes() == b"v"


@pytest.mark.parametrize(
    ("url", "named"),
    [("ftp://host/x", "'ftp'"), ("/plain/path", "''"), ("file://relative/path", "file://relative/path"),
     ("file:///tmp/x?mode=1", "query"), ("s3:///prefix", "no bucket"), ("s3://Bad_Bucket/x", "Bad_Bucket"),
     ("s3://bucket/a/../b", "a/../b")],
)
def test_bad_store_urls_are_refused_naming_the_problem(url: str, named: str) -> None:
    with pytest.raises(OrgmemError) as caught:
        open_store(url)
    assert named in str(caught.value)


def test_s3_url_takes_endpoint_region_and_credentials_from_settings() -> None:
    settings = Settings(s3_endpoint_url="http://127.0.0.1:9", s3_region="eu-west-1",
                        s3_access_key_id="AK", s3_secret_access_key="SK")
    store = open_store("s3://orgmem-ckpt/prod/stores", settings)
    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix, store.url) == ("orgmem-ckpt", "prod/stores", "s3://orgmem-ckpt/prod/stores")
    assert store.endpoint == "http://127.0.0.1:9"
    assert store.client.meta.config.s3["addressing_style"] == "path"
    assert store.client.meta.region_name == "eu-west-1"
    credentials = store.client._request_signer._credentials
    assert (credentials.access_key, credentials.secret_key) == ("AK", "SK")


def test_backend_schemes_register_once() -> None:
    with pytest.raises(ValueError, match="'file'"):
        register_backend("file", lambda parts, settings: LocalFolderStore("/tmp"))


# -- unreachable, hanging and refusing servers ---------------------------------------------------

@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung server)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


def _s3(port: int, **options) -> S3Store:
    settings = {"access_key_id": "AK", "secret_access_key": "SK"} | options
    return S3Store("orgmem-test", "p", S3Options(endpoint_url=f"http://127.0.0.1:{port}", **settings))


class _Attempts:
    """Counts the HTTP attempts a store's client sends and records the back-off it sleeps between
    them (without sleeping): "fails fast" is judged by how many tries and how much planned waiting,
    not by a stopwatch."""

    def __init__(self, store: S3Store, monkeypatch) -> None:
        self.sent = 0
        self.backoff: list[float] = []
        store.client.meta.events.register("before-send.s3", self._count)
        monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=self.backoff.append))

    def _count(self, **_) -> None:
        self.sent += 1


def _within(seconds: float, action):
    """Run ``action`` on a thread and return its exception; the deadline only guards against a hang."""
    outcome: dict[str, BaseException] = {}
    done = threading.Event()

    def run() -> None:
        try:
            action()
        except BaseException as exc:  # handed back to the test
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(seconds), f"the store call hung for {seconds} s"
    return outcome.get("error")


def test_unreachable_endpoint_fails_fast_naming_endpoint_and_key(closed_port: int, monkeypatch) -> None:
    store = _s3(closed_port)
    attempts = _Attempts(store, monkeypatch)
    for action in (lambda: store.get("orgs/acme/m.bin"), lambda: store.put("orgs/acme/m.bin", b"x")):
        attempts.sent, attempts.backoff[:] = 0, []
        with pytest.raises(StoreUnavailableError) as caught:
            action()
        # botocore's ``max_attempts`` counts the retries after the first try: 1 + 3, each refused at
        # once, with sub-second back-off between them
        assert attempts.sent == 1 + store.options.max_attempts == 4
        assert len(attempts.backoff) == 3 and sum(attempts.backoff) < 1
        assert isinstance(caught.value.__cause__, EndpointConnectionError)
        assert f"127.0.0.1:{closed_port}" in str(caught.value) and "orgs/acme/m.bin" in str(caught.value)
    with pytest.raises(StoreUnavailableError, match=f"127.0.0.1:{closed_port}"):
        store.list()


def test_hanging_endpoint_times_out(silent_port: int, monkeypatch) -> None:
    store = _s3(silent_port, read_timeout=0.3, max_attempts=2)
    attempts = _Attempts(store, monkeypatch)
    # botocore's default read timeout (60 s a try) would blow the 30 s guard; ours ends each try
    error = _within(30, lambda: store.get("k"))
    assert isinstance(error, StoreUnavailableError), error
    assert re.search(f"127.0.0.1:{silent_port}.*'k'", str(error)), error
    assert isinstance(error.__cause__, ReadTimeoutError)
    assert attempts.sent == 1 + 2 and len(attempts.backoff) == 2


def test_missing_credentials_are_reported(closed_port: int, tmp_path: Path, monkeypatch) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    store = _s3(closed_port, access_key_id=None, secret_access_key=None)
    with pytest.raises(StoreAccessError, match="ORGMEM_S3_ACCESS_KEY_ID"):
        store.get("k")


@pytest.mark.parametrize(
    ("code", "status", "error", "named"),
    [("SignatureDoesNotMatch", 403, StoreAccessError, "SignatureDoesNotMatch"),
     ("AccessDenied", 403, StoreAccessError, "AccessDenied"),
     ("NoSuchBucket", 404, NotFoundError, "bucket 'orgmem-test'"),
     ("InternalError", 500, StoreUnavailableError, "HTTP 500"),
     ("InvalidRequest", 400, OrgmemError, "InvalidRequest")],
)
def test_server_errors_are_translated(closed_port: int, code: str, status: int, error, named: str) -> None:
    store = _s3(closed_port)
    with Stubber(store.client) as stub:
        stub.add_client_error("get_object", service_error_code=code, http_status_code=status)
        with pytest.raises(error) as caught:
            store.get("orgs/acme/m.bin")
    message = str(caught.value)
    assert named in message and f"127.0.0.1:{closed_port}" in message and "SK" not in message.split()


def test_wrong_secret_is_refused_by_the_real_server(s3_bucket) -> None:
    if os.environ.get("ORGMEM_TEST_S3_IMPL") == "moto":
        pytest.skip("moto accepts any credentials; this check needs the real server (S3_IMPL=ceph)")
    options, bucket = s3_bucket
    good = S3Store(bucket, f"wrong-{uuid.uuid4().hex[:6]}", options)
    good.put("k", b"secret data")
    bad = S3Store(bucket, good.prefix, S3Options(endpoint_url=options.endpoint_url,
                                                  access_key_id=options.access_key_id,
                                                  secret_access_key="not-the-secret"))
    for action in (lambda: bad.get("k"), lambda: bad.put("k2", b"x"), bad.list):
        with pytest.raises(StoreAccessError) as caught:
            action()
        assert "SignatureDoesNotMatch" in str(caught.value) and options.endpoint_url in str(caught.value)
    assert [i.key for i in good.list()] == ["k"]
