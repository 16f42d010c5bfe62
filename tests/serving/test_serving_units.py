"""Small parts in isolation: streamed text with stop sequences, sampling, rate limit, memory cache, keys."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from orgmem.api.ratelimit import RateLimiter
from orgmem.db.migrate import upgrade
from orgmem.db.models import ApiKey
from orgmem.db.session import session_scope
from orgmem.errors import ConflictError, NotFoundError, OrgmemError
from orgmem.keys import AuthenticationError, authenticate, create_key, hash_key, list_keys, revoke_key
from orgmem.lineage import create_org
from orgmem.memory.rows import RowMemory
from orgmem.serving.memcache import MemoryCache
from orgmem.serving.sampling import Sampler, SamplingParams
from orgmem.serving.textstream import TextStream

# -- text streaming ------------------------------------------------------------------------------


def stream_text(tokenizer, text: str, stop: tuple[str, ...]) -> tuple[list[str], TextStream]:
    ts = TextStream(tokenizer, stop)
    pieces = [ts.push(t) for t in tokenizer(text, add_special_tokens=False)["input_ids"]]
    if not ts.stopped:
        pieces.append(ts.finish())
    return pieces, ts


def test_stream_reassembles_text_including_multibyte_characters(tiny_base):
    text = "Blåbær på Tromsø — 東京 ✓"
    pieces, ts = stream_text(tiny_base.tokenizer, text, ())
    assert "".join(pieces) == text == ts.text
    assert all("\ufffd" not in p for p in pieces)  # never half a character


def test_stop_sequence_split_over_tokens_is_never_sent(tiny_base):
    pieces, ts = stream_text(tiny_base.tokenizer, "alpha beta END gamma", ("END",))
    assert "".join(pieces) == "alpha beta " and ts.stopped and ts.text == "alpha beta "
    assert not any("E" in p for p in pieces)


def test_held_back_prefix_is_released_when_it_does_not_complete(tiny_base):
    pieces, ts = stream_text(tiny_base.tokenizer, "one EN two", ("END",))
    assert "".join(pieces) == "one EN two" and not ts.stopped


def test_earliest_of_several_stops_wins(tiny_base):
    pieces, _ = stream_text(tiny_base.tokenizer, "a;b.c", (".", ";"))
    assert "".join(pieces) == "a"


# -- sampling ------------------------------------------------------------------------------------


def test_sampling_params_refuse_bad_values_by_name():
    for kwargs, name in (({"temperature": -1}, "temperature"), ({"top_p": 0}, "top_p"),
                         ({"max_tokens": 0}, "max_tokens"), ({"stop": ("",)}, "stop")):
        with pytest.raises(OrgmemError, match=name):
            SamplingParams(**kwargs)


def test_seed_reproduces_and_greedy_is_argmax():
    logits = torch.randn(500, generator=torch.Generator().manual_seed(0))
    a = [Sampler(SamplingParams(seed=3))(logits) for _ in range(3)]
    draws = Sampler(SamplingParams(seed=3))
    assert a == [draws(logits)] * 3
    assert Sampler(SamplingParams(temperature=0))(logits) == int(logits.argmax())


def test_top_p_only_draws_from_the_nucleus():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05] + [0.0] * 96)
    logits = probs.clamp_min(1e-12).log()
    sampler = Sampler(SamplingParams(top_p=0.75, seed=1))
    drawn = {sampler(logits) for _ in range(300)}
    assert drawn == {0, 1}  # 0.5 + 0.3 reaches 0.75; token 2 is outside the nucleus
    wide = Sampler(SamplingParams(top_p=0.999, seed=1))
    assert {wide(logits) for _ in range(500)} == {0, 1, 2, 3}


def test_top_p_beyond_the_first_64_tokens_sorts_the_whole_vocabulary():
    logits = torch.zeros(1000)  # uniform: the top 64 hold 6.4% of the mass
    sampler = Sampler(SamplingParams(top_p=0.5, seed=2))
    assert len({sampler(logits) for _ in range(400)}) > 64


# -- rate limit ----------------------------------------------------------------------------------


def test_token_bucket_allows_burst_then_refills():
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=2, clock=lambda: now[0])
    assert limiter.acquire(1) is None and limiter.acquire(1) is None
    wait = limiter.acquire(1)
    assert wait == pytest.approx(1.0)
    assert limiter.acquire(2) is None  # another key has its own bucket
    now[0] += 1.0
    assert limiter.acquire(1) is None
    assert RateLimiter.retry_after_header(0.2) == "1"
    assert RateLimiter(per_minute=0, burst=1).acquire(1) is None  # off


# -- memory cache --------------------------------------------------------------------------------


def memory(sha: str) -> RowMemory:
    return RowMemory(sha256=sha, kind="cms", ops={}, nbytes=10)


def test_lru_evicts_least_recently_used_and_counts():
    cache = MemoryCache(2)
    a = cache.get("a", lambda: memory("a"))
    cache.get("b", lambda: memory("b"))
    assert cache.get("a", lambda: pytest.fail("a is cached")) is a
    cache.get("c", lambda: memory("c"))
    assert cache.keys() == ["a", "c"]
    assert (cache.stats.hits, cache.stats.misses, cache.stats.evictions) == (1, 3, 1)
    assert cache.nbytes == 20


def test_concurrent_misses_load_once():
    cache, calls, gate = MemoryCache(2), [], threading.Event()

    def slow_load() -> RowMemory:
        calls.append(1)
        gate.wait(5)
        return memory("x")

    results: list[RowMemory] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("x", slow_load))) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    gate.set()
    for t in threads:
        t.join(5)
    assert len(calls) == 1 and len(results) == 4 and len({id(r) for r in results}) == 1


def test_failed_load_is_not_cached_and_is_raised_to_every_waiter():
    cache = MemoryCache(2)

    def broken() -> RowMemory:
        raise OrgmemError("checkpoint ck_x is corrupt")

    with pytest.raises(OrgmemError, match="ck_x"):
        cache.get("x", broken)
    assert "x" not in cache
    assert cache.get("x", lambda: memory("x")).sha256 == "x"


# -- keys ----------------------------------------------------------------------------------------


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    upgrade(url)
    with session_scope(url, write=True) as s:
        create_org(s, "acme", actor="test")
        create_org(s, "globex", actor="test")
    return url


def test_only_the_hash_is_stored_and_the_key_authenticates(db):
    with session_scope(db, write=True) as s:
        created = create_key(s, "acme", "admin", "ops", actor="test")
    assert created.key.startswith("omk_") and len(created.key) >= 40
    with session_scope(db) as s:
        row = s.get(ApiKey, created.row.id)
        assert row.key_hash == hash_key(created.key) and created.key not in (row.key_hash, row.key_prefix)
        who = authenticate(s, created.key)
    assert (who.org_slug, who.role, who.name, who.is_admin) == ("acme", "admin", "ops", True)


@pytest.mark.parametrize("presented, reason", [(None, "missing"), ("", "missing"), ("sk-123", "malformed"),
                                               ("omk_" + "x" * 43, "invalid")])
def test_bad_keys_are_refused_with_the_reason(db, presented, reason):
    with session_scope(db) as s, pytest.raises(AuthenticationError, match=reason):
        authenticate(s, presented)


def test_a_key_with_a_right_prefix_but_wrong_secret_is_refused(db):
    with session_scope(db, write=True) as s:
        key = create_key(s, "acme", "employee", actor="test").key
    with session_scope(db) as s, pytest.raises(AuthenticationError, match="invalid"):
        authenticate(s, key[:-1] + ("A" if key[-1] != "A" else "B"))


def test_revoke_by_id_or_prefix_and_its_errors(db):
    with session_scope(db, write=True) as s:
        a = create_key(s, "acme", "employee", "a", actor="test")
        b = create_key(s, "acme", "employee", "b", actor="test")
        g = create_key(s, "globex", "admin", actor="test")
        with pytest.raises(ConflictError, match="already has an active key named 'a'"):
            create_key(s, "acme", "employee", "a", actor="test")
        revoke_key(s, "acme", a.row.id, actor="test")
        revoke_key(s, "acme", b.key[:12], actor="test")
        with pytest.raises(ConflictError, match="already revoked"):
            revoke_key(s, "acme", a.row.id, actor="test")
        with pytest.raises(NotFoundError, match="acme"):
            revoke_key(s, "acme", g.row.id, actor="test")  # another org's key is not found here
        assert [k.name for k in list_keys(s, "acme")] == ["a", "b"]
    with session_scope(db) as s:
        with pytest.raises(AuthenticationError, match="revoked"):
            authenticate(s, a.key)
        assert authenticate(s, g.key).org_slug == "globex"
