"""One battery of object-store behaviour, run over every backend.

``local`` always runs; ``s3`` runs against the real server started by ``infra/ci/services.sh``
(skipped with the reason printed when it is absent, a failure under CI=true). Each test module gets
its own bucket, removed at the end; each test its own prefix inside it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from orgmem.errors import IntegrityError, NotFoundError
from orgmem.store.base import InvalidKeyError, ObjectStore, sha256_hex
from orgmem.store.file import LocalFolderStore

BAD_KEYS = ["../escape", "a/../../escape", "/etc/passwd", "a//b", "./a", "", "a\\..\\b", "a/.", "a/\x00"]


@dataclass
class Backend:
    """A store plus hooks that reach behind its back, to simulate corruption."""

    name: str
    store: ObjectStore
    corrupt: Callable[[str, bytes], None]  # overwrite the stored bytes, keeping recorded metadata
    break_read_back: Callable[[pytest.MonkeyPatch], None]  # make the next reads return other bytes


def _flip(data: bytes) -> bytes:
    return bytes([data[0] ^ 0xFF]) + data[1:] if data else b"x"


def _local_backend(root: Path) -> Backend:
    store = LocalFolderStore(root)
    original = store._read_bytes

    def corrupt(key: str, data: bytes) -> None:
        (root / key).write_bytes(data)

    def break_read_back(mp: pytest.MonkeyPatch) -> None:
        mp.setattr(store, "_read_bytes", lambda key, path: _flip(original(key, path)))

    return Backend("local", store, corrupt, break_read_back)


def _s3_backend(options, bucket: str) -> Backend:
    from orgmem.store.s3 import S3Store

    store = S3Store(bucket, prefix=f"run-{uuid.uuid4().hex[:8]}/store", options=options)
    original = store._read_bytes

    def corrupt(key: str, data: bytes) -> None:
        full = f"{store.prefix}/{key}"
        meta = store.client.head_object(Bucket=bucket, Key=full)["Metadata"]
        store.client.put_object(Bucket=bucket, Key=full, Body=data, Metadata=meta)

    def break_read_back(mp: pytest.MonkeyPatch) -> None:
        def flipped(key: str) -> tuple[bytes, dict[str, str]]:
            data, meta = original(key)
            return _flip(data), meta

        mp.setattr(store, "_read_bytes", flipped)

    return Backend("s3", store, corrupt, break_read_back)


@pytest.fixture(params=["local", "s3"])
def backend(request, tmp_path) -> Backend:
    if request.param == "local":
        return _local_backend(tmp_path / "store")
    options, bucket = request.getfixturevalue("s3_bucket")
    return _s3_backend(options, bucket)


def test_put_get_round_trip(backend: Backend) -> None:
    store = backend.store
    payloads = {"orgs/acme/checkpoints/c1/memory.safetensors": bytes(range(256)) * 40,
                "orgs/acme/checkpoints/c1/manifest.json": b'{"id": "c1"}',
                "orgs/acme/empty.bin": b""}
    for key, data in payloads.items():
        info = store.put(key, data)
        assert (info.key, info.sha256, info.size) == (key, sha256_hex(data), len(data))
    for key, data in payloads.items():
        assert store.get(key) == data
        assert store.get(key, expected_sha256=sha256_hex(data)) == data
        assert store.exists(key)


def test_overwrite_replaces_whole_object(backend: Backend) -> None:
    backend.store.put("k/v.bin", b"long old content" * 100)
    backend.store.put("k/v.bin", b"new")
    assert backend.store.get("k/v.bin") == b"new"
    assert [i.size for i in backend.store.list("k/")] == [3]


def test_checksum_and_size_are_recorded(backend: Backend, tmp_path: Path) -> None:
    source = tmp_path / "state.safetensors"
    source.write_bytes(b"\x00weights" * 1000)
    info = backend.store.put_file("orgs/acme/checkpoints/c2/train_state.safetensors", source)
    assert info.sha256 == sha256_hex(source.read_bytes())
    assert backend.store.stat(info.key) == info


def test_corrupt_object_raises_integrity_error_naming_key(backend: Backend) -> None:
    key = "orgs/acme/checkpoints/c3/memory.safetensors"
    info = backend.store.put(key, b"good weights" * 10)
    backend.corrupt(key, b"bad weights!" * 10)
    with pytest.raises(IntegrityError) as caught:
        backend.store.get(key, expected_sha256=info.sha256)
    message = str(caught.value)
    assert key in message and info.sha256 in message and sha256_hex(b"bad weights!" * 10) in message


def test_missing_object_raises_not_found_naming_key(backend: Backend) -> None:
    key = "orgs/acme/checkpoints/nope/manifest.json"
    for call in (lambda: backend.store.get(key), lambda: backend.store.stat(key)):
        with pytest.raises(NotFoundError, match="nope/manifest.json"):
            call()
    assert backend.store.exists(key) is False


def test_list_with_prefix_and_pagination(backend: Backend) -> None:
    keys = ["a/b/1", "a/b/2", "a/b/3", "a/c/1", "ab/1"]
    for key in reversed(keys):
        backend.store.put(key, key.encode())
    listed = backend.store.list()
    assert [i.key for i in listed] == keys
    assert all(i.size == len(i.key) for i in listed)
    assert [i.key for i in backend.store.list("a/b/")] == ["a/b/1", "a/b/2", "a/b/3"]
    assert [i.key for i in backend.store.list("a/")] == ["a/b/1", "a/b/2", "a/b/3", "a/c/1"]
    assert [i.key for i in backend.store.list("a")] == keys  # plain string prefix, as on S3
    assert [i.key for i in backend.store.list("a/b/2")] == ["a/b/2"]
    assert backend.store.list("zzz/") == [] and backend.store.list("a/zz") == []
    assert [i.key for i in backend.store.iter_objects("a/c")] == ["a/c/1"]


def test_delete_removes_only_that_key(backend: Backend) -> None:
    backend.store.put("d/keep", b"1")
    backend.store.put("d/sub/gone", b"2")
    backend.store.delete("d/sub/gone")
    backend.store.delete("d/sub/gone")  # missing: not an error
    assert not backend.store.exists("d/sub/gone")
    with pytest.raises(NotFoundError):
        backend.store.get("d/sub/gone")
    assert [i.key for i in backend.store.list("d/")] == ["d/keep"]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_keys_that_could_escape_are_refused(backend: Backend, key: str, tmp_path: Path) -> None:
    for call in (lambda: backend.store.put(key, b"x"), lambda: backend.store.get(key),
                 lambda: backend.store.delete(key), lambda: backend.store.exists(key)):
        with pytest.raises(InvalidKeyError) as caught:
            call()
        assert repr(key) in str(caught.value)
    assert backend.store.list() == []
    assert not (tmp_path / "escape").exists()


def test_bad_listing_prefix_is_refused(backend: Backend) -> None:
    with pytest.raises(InvalidKeyError, match=r"\.\./"):
        backend.store.list("../")


def test_write_that_reads_back_differently_is_refused_and_removed(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend.break_read_back(monkeypatch)
    with pytest.raises(IntegrityError, match="c4/memory.safetensors.*read back differently"):
        backend.store.put("orgs/acme/checkpoints/c4/memory.safetensors", b"weights")
    monkeypatch.undo()
    assert backend.store.list() == []
