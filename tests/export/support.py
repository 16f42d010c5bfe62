"""The export tests' deployment: a database + store whose orgs serve memories of every kind.

``kind-<spec>`` orgs (``kind-cms``, ``kind-cms-titans``...) each serve one checkpoint holding a
memory of that kind with random non-zero weights, so any term the export got wrong shows in the
logits. ``acme`` serves ``acme-2`` (child of ``acme-1``), its group ``legal`` serves ``legal-1``
on top, and it holds a quarantined checkpoint and one recorded on another base. ``state`` is the
server's own ``ServingState`` (resolution, memory cache, stacks and batched engine) on the tiny
base: what the export must reproduce.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch

from orgmem.api.state import ServingState
from orgmem.checkpoints import MEMORY, CheckpointDraft, commit_checkpoint
from orgmem.config import Settings
from orgmem.db.migrate import upgrade
from orgmem.db.session import session_scope
from orgmem.keys import authenticate, create_key
from orgmem.lineage import create_org, quarantine
from orgmem.memory import attach, save_memory
from orgmem.serving.config import ServeSettings
from orgmem.serving.engine import Finished, GenerationRequest
from orgmem.serving.sampling import SamplingParams
from orgmem.store import open_store
from orgmem.store.base import sha256_hex

KIND_SPECS = ["cms", "lora", "titans", "cms+titans", "cms+lora"]
FOREIGN_FINGERPRINT = "f" * 64


def kind_org(spec: str) -> str:
    return "kind-" + spec.replace("+", "-")


def perturbed_memory(base, spec: str, seed: int) -> bytes:
    """A ``spec`` memory with random non-zero weights on top of its attach-time values."""
    gen = torch.Generator().manual_seed(seed)
    with attach(base, spec) as handle:
        state = {k: v + 0.3 * torch.randn(v.shape, generator=gen)
                 for k, v in handle.memory_state_dict().items()}
        handle.load_memory_state_dict(state)
        return save_memory(handle)


@dataclass
class ExportDeployment:
    root: Path
    settings: Settings
    state: ServingState
    checkpoints: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)

    def served_memory(self, key: str, model: str):
        """The ``RowMemory`` the server answers ``model`` with for ``key`` (its resolution, its cache)."""
        with session_scope(self.settings.database_url) as s:
            identity = authenticate(s, self.keys[key])
        return self.state.memory_for(self.state.resolve(identity, model))

    def served_tokens(self, prompt: list[int], memory, max_tokens: int) -> list[int]:
        """Greedy reply of the server's batched engine: the token ids it took (an end-of-turn id last
        when it stopped on one), recorded through the engine's constraint hook."""
        done, box, taken = threading.Event(), {}, _Recorder()

        def on_event(event) -> None:
            if isinstance(event, Finished):
                box["text"] = event.text
                done.set()

        engine = self.state.engine
        assert engine is not None
        engine.submit(GenerationRequest(prompt_ids=prompt, memory=memory, on_event=on_event, constraint=taken,
                                        params=SamplingParams(max_tokens=max_tokens, temperature=0)))
        assert done.wait(60), "the engine did not finish"
        return taken.tokens


class _Recorder:
    """A ``TokenConstraint`` that allows every token and records the ones taken."""

    def __init__(self) -> None:
        self.tokens: list[int] = []

    def allowed(self, vocab_size: int) -> None:
        return None

    def advance(self, token: int) -> None:
        self.tokens.append(token)

    @property
    def finished(self) -> bool:
        return False


def _commit(s, store, base, org: str, data: bytes, kind: str, *, parent: str | None = None,  # noqa: PLR0913  # test helper
            status: str = "promoted", audience: str = "org", fingerprint: str | None = None) -> str:
    # digest_extra: checkpoints with the same parent and (no) inputs are distinct commits here
    result = commit_checkpoint(s, store, CheckpointDraft(
        org=org, parent_id=parent, objects={MEMORY: data}, manifest={}, inputs=[], metrics={}, status=status,
        created_by="test", base_model=base.name, base_fingerprint=fingerprint or base.fingerprint,
        memory_kind=kind, audience=audience, digest_extra={"memory": sha256_hex(data)}))
    return result.checkpoint.id


def make_export_deployment(root: Path, base) -> ExportDeployment:
    settings = Settings(home=root, database_url=f"sqlite:///{root / 'orgmem.db'}",
                        store_url=f"file://{root / 'store'}", base_model="tiny-random")
    upgrade(settings.database_url)
    store = open_store(settings=settings)
    orgs = ["acme", *(kind_org(spec) for spec in KIND_SPECS)]
    with session_scope(settings.database_url, write=True) as s:
        for org in orgs:
            create_org(s, org, org.title(), actor="test")
    cks: dict[str, str] = {}
    with session_scope(settings.database_url) as s:
        for seed, spec in enumerate(KIND_SPECS, start=20):
            cks[spec] = _commit(s, store, base, kind_org(spec), perturbed_memory(base, spec, seed), spec)
        cks["acme-1"] = _commit(s, store, base, "acme", perturbed_memory(base, "cms", 10), "cms")
        cks["acme-2"] = _commit(s, store, base, "acme", perturbed_memory(base, "cms", 11), "cms",
                                parent=cks["acme-1"])
        cks["legal-1"] = _commit(s, store, base, "acme", perturbed_memory(base, "cms", 12), "cms",
                                 audience="legal")
        cks["quarantined"] = _commit(s, store, base, "acme", perturbed_memory(base, "cms", 13), "cms",
                                     parent=cks["acme-2"], status="candidate")
        cks["foreign"] = _commit(s, store, base, "acme", perturbed_memory(base, "cms", 14), "cms",
                                 parent=cks["acme-2"], status="candidate", fingerprint=FOREIGN_FINGERPRINT)
    keys: dict[str, str] = {}
    with session_scope(settings.database_url, write=True) as s:
        quarantine(s, "acme", cks["quarantined"], actor="test", reason="forgotten material")
        for org in orgs:
            keys[org] = create_key(s, org, "admin", actor="test").key
        keys["acme-legal"] = create_key(s, "acme", "employee", "counsel", actor="test", groups=["legal"]).key
        keys["acme-legal-admin"] = create_key(s, "acme", "admin", "gc", actor="test", groups=["legal"]).key
    serve = ServeSettings(cache_size=16, max_batch=8, rate_limit_per_minute=100_000, rate_limit_burst=10_000,
                          max_concurrent_per_key=64, default_max_tokens=16)
    state = ServingState(settings, serve, base=base)
    state.start()
    return ExportDeployment(root, settings, state, cks, keys)
