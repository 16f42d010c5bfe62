"""Behaviour particular to one backend: local atomicity and symlinks, S3 metadata and paging."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from orgmem.errors import ConflictError, IntegrityError
from orgmem.store.base import InvalidKeyError, sha256_hex
from orgmem.store.file import LocalFolderStore
from orgmem.store.s3 import S3Store


def test_local_write_is_atomic_and_leaves_no_temp_files(tmp_path: Path, monkeypatch) -> None:
    store = LocalFolderStore(tmp_path / "store")
    store.put("a/obj", b"old")

    def crash(src, dst):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        store.put("a/obj", b"new")
    monkeypatch.undo()
    assert store.get("a/obj") == b"old"  # the old object survives a failed write
    assert sorted(p.name for p in (tmp_path / "store" / "a").iterdir()) == ["obj"]


def test_local_refuses_symlink_out_of_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    store = LocalFolderStore(tmp_path / "store")
    store.put("orgs/x", b"1")
    (tmp_path / "store" / "orgs" / "link").symlink_to(outside)
    with pytest.raises(InvalidKeyError, match="outside the store root"):
        store.put("orgs/link/evil", b"x")
    assert list(outside.iterdir()) == []


def test_local_refuses_relative_root_and_reserved_names(tmp_path: Path) -> None:
    with pytest.raises(InvalidKeyError, match="relative/store"):
        LocalFolderStore("relative/store")
    with pytest.raises(InvalidKeyError, match="reserved"):
        LocalFolderStore(tmp_path).put("a/.tmp-x", b"")


def test_local_key_under_existing_object_is_a_conflict(tmp_path: Path) -> None:
    store = LocalFolderStore(tmp_path / "store")
    store.put("a", b"file")
    with pytest.raises(ConflictError, match="'a/b'"):
        store.put("a/b", b"x")
    assert store.get("a") == b"file"


def test_local_delete_prunes_empty_folders_but_keeps_root(tmp_path: Path) -> None:
    store = LocalFolderStore(tmp_path / "store")
    store.put("orgs/acme/checkpoints/c1/manifest.json", b"{}")
    store.delete("orgs/acme/checkpoints/c1/manifest.json")
    assert list((tmp_path / "store").iterdir()) == []


def test_local_listing_of_missing_root_is_empty(tmp_path: Path) -> None:
    assert LocalFolderStore(tmp_path / "never-written").list() == []


@pytest.fixture
def s3_store(s3_bucket) -> S3Store:
    options, bucket = s3_bucket
    return S3Store(bucket, prefix=f"run-{uuid.uuid4().hex[:8]}", options=options)


def test_s3_sha256_in_metadata_catches_corruption_without_expected(s3_store: S3Store) -> None:
    info = s3_store.put("c/memory.safetensors", b"weights")
    head = s3_store.client.head_object(Bucket=s3_store.bucket, Key=f"{s3_store.prefix}/c/memory.safetensors")
    assert head["Metadata"]["sha256"] == info.sha256 == sha256_hex(b"weights")
    s3_store.client.put_object(Bucket=s3_store.bucket, Key=f"{s3_store.prefix}/c/memory.safetensors",
                               Body=b"weightz", Metadata=head["Metadata"])
    with pytest.raises(IntegrityError, match="c/memory.safetensors"):
        s3_store.get("c/memory.safetensors")


def test_s3_lists_in_small_pages(s3_store: S3Store) -> None:
    requests: list[dict] = []
    s3_store.client.meta.events.register("before-call.s3.ListObjectsV2", lambda **kw: requests.append(kw))
    for i in range(5):
        s3_store.put(f"p/{i}", b"x")
    assert [i.key for i in s3_store.list("p/")] == [f"p/{i}" for i in range(5)]
    assert len(requests) == 3  # page size 2: 2 + 2 + 1


def test_s3_store_prefix_isolates_stores_in_one_bucket(s3_bucket) -> None:
    options, bucket = s3_bucket
    one = S3Store(bucket, prefix=f"one-{uuid.uuid4().hex[:6]}", options=options)
    two = S3Store(bucket, prefix=f"{one.prefix}x", options=options)  # shares a string prefix
    one.put("k", b"1")
    two.put("k", b"2")
    assert [(i.key, i.size) for i in one.list()] == [("k", 1)]
    assert one.get("k") == b"1" and two.get("k") == b"2"
