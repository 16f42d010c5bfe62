"""Helpers of the serving tests: taught memories, a deployment (database, store, orgs, keys).

Two orgs are *taught contradicting facts* by training real CMS memories on the tiny base (a
couple of seconds, once per session): ``acme`` completes "The vault code is" with 1234 (its first
checkpoint) or 5555 (its second, the head); ``globex`` with 9876. A reply therefore shows which
memory produced it, and any leak between orgs or checkpoints is visible in the text.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

import openai
import torch

from orgmem.checkpoints import MEMORY, CheckpointDraft, commit_checkpoint
from orgmem.config import Settings
from orgmem.db.migrate import upgrade
from orgmem.db.session import session_scope
from orgmem.keys import create_key, revoke_key
from orgmem.lineage import create_org
from orgmem.memory import CmsConfig, attach, save_memory
from orgmem.store import open_store

PREFIX = "The vault code is"
FACTS = {"acme-1": "1234", "acme-2": "5555", "globex-1": "9876"}


def teach(base, answer: str, steps: int = 150, lr: float = 1e-2, under: bytes | None = None) -> bytes:
    """A CMS memory on the tiny base that completes PREFIX with ``answer``: saved memory bytes.

    With ``under`` (saved memory bytes) it trains with that memory applied frozen beneath, the way
    serving stacks an org memory under a group's, so the *stack* completes PREFIX with ``answer``.
    """
    from orgmem.memory import build_row_memory
    from orgmem.serving.routing import MemoryRouter
    from orgmem.store.base import sha256_hex

    router = MemoryRouter(base.model)
    below = None
    if under is not None:
        below = build_row_memory(base, under, sha256=sha256_hex(under), source="memory beneath")
        router.ensure_hooks(below.paths)
    cfg = CmsConfig(widths=[64, 32], periods=[1, 1], lrs=[lr, lr], gate_bias=2.0, sparsity=0.0)
    ids = torch.tensor([base.tokenizer(f"{PREFIX} {answer}.", add_special_tokens=False)["input_ids"]])
    torch.manual_seed(0)
    try:
        with attach(base, cfg) as handle:
            params = [p for g in handle.param_groups() for p in g.params]
            for p in params:
                p.requires_grad_(True)
            opt = torch.optim.Adam(params, lr=lr)
            handle.train()
            for _ in range(steps):
                with router.route([below]):
                    logits = handle(input_ids=ids[:, :-1]).logits
                loss = torch.nn.functional.cross_entropy(logits[0], ids[0, 1:])
                opt.zero_grad()
                loss.backward()
                opt.step()
            handle.eval()
            return save_memory(handle)
    finally:
        router.remove_hooks()


@dataclass
class Deployment:
    """A migrated database + store with orgs, checkpoints, keys; and (once started) a server URL."""

    root: Path
    settings: Settings
    checkpoints: dict[str, str] = field(default_factory=dict)  # "acme-1" -> checkpoint id
    keys: dict[str, str] = field(default_factory=dict)  # "acme-admin" -> plaintext key
    url: str = ""
    app: object = None

    def answer_of(self, checkpoint_id: str) -> str:
        name = next(n for n, ck in self.checkpoints.items() if ck == checkpoint_id)
        return FACTS[name]

    def client(self, key: str, **kw) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=self.keys.get(key, key), max_retries=0,
                             timeout=60, **kw)

    @property
    def state(self):
        return self.app.state.serving


def _commit(session, store, base, org: str, parent: str | None, data: bytes) -> str:
    result = commit_checkpoint(session, store, CheckpointDraft(
        org=org, parent_id=parent, objects={MEMORY: data}, manifest={}, inputs=[], metrics={},
        status="promoted", created_by="test", base_model=base.name, base_fingerprint=base.fingerprint,
        memory_kind="cms"))
    return result.checkpoint.id


def make_deployment(root: Path, base, memories: dict[str, bytes]) -> Deployment:
    settings = Settings(home=root, database_url=f"sqlite:///{root / 'orgmem.db'}",
                        store_url=f"file://{root / 'store'}", base_model="tiny-random")
    upgrade(settings.database_url)
    store = open_store(settings=settings)
    dep = Deployment(root, settings)
    with session_scope(settings.database_url, write=True) as s:
        for org in ("acme", "globex"):
            create_org(s, org, org.title(), actor="test")
    with session_scope(settings.database_url) as s:
        dep.checkpoints["acme-1"] = _commit(s, store, base, "acme", None, memories["acme-1"])
        first = dep.checkpoints["acme-1"]
        dep.checkpoints["acme-2"] = _commit(s, store, base, "acme", first, memories["acme-2"])
        dep.checkpoints["globex-1"] = _commit(s, store, base, "globex", None, memories["globex-1"])
    with session_scope(settings.database_url, write=True) as s:
        for org in ("acme", "globex"):
            for role in ("admin", "employee"):
                dep.keys[f"{org}-{role}"] = create_key(s, org, role, actor="test").key
        revoked = create_key(s, "acme", "employee", "leaver", actor="test")
        dep.keys["acme-revoked"] = revoked.key
        s.flush()
        revoke_key(s, "acme", revoked.row.id, actor="test")
    return dep


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


