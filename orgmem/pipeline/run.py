"""The nightly consolidation of one org, start to finish: ``consolidate_org(slug, ctx=...)``.

Order matters for crash safety:
1. fix the input set (pending chunks on the current head + replay sample) and its digest; if an
   earlier attempt already committed a checkpoint for it, skip straight to the gate;
2. delete objects a killed attempt uploaded but never committed (we hold the org's lease);
3. load base + parent memory/train state (checksum-verified), run the engine; a group trains with
   the org's served memory frozen underneath, as serving stacks them (``pipeline.underlay``);
4. evaluate the candidate against its parent (a group's: both over that org memory); the gate
   decides (stored with the checkpoint);
5. last cancel check, then ``commit_checkpoint``: objects uploaded and verified, then rows, in a
   transaction that first checks the job still holds its lease (a cancel frees it at once);
6. apply the decision: promote (head moves, its chunks become consumed, a serving event) or
   reject (nothing served changes; the chunks stay pending for the next night). Approved
   corrections the night trained (``orgmem.feedback``) are marked consumed by a promoted one.
A crash anywhere before 5 leaves no row; a crash between 5 and 6 is finished by the retry.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from sqlalchemy.orm import Session

from orgmem.checkpoints import (
    MEMORY,
    TRAIN_STATE,
    CheckpointDraft,
    CheckpointMetrics,
    InputRef,
    commit_checkpoint,
)
from orgmem.config import get_settings
from orgmem.db.enums import CheckpointStatus
from orgmem.db.models import Checkpoint
from orgmem.db.session import session_scope
from orgmem.errors import IncompatibleBaseError, NotFoundError
from orgmem.eval.report import finite_json
from orgmem.feedback.corrections import mark_consumed
from orgmem.feedback.settings import get_feedback_settings
from orgmem.gate import Check, GateConfig, GateDecision, apply_decision, decide
from orgmem.governance.record import governance_for_chunks
from orgmem.lineage import get_org
from orgmem.lineage.audiences import ORG_AUDIENCE, validate_audience
from orgmem.memory import memory_config, read_metadata
from orgmem.pipeline.config import resolve
from orgmem.pipeline.evaluation import evaluate_candidate
from orgmem.pipeline.feedback_report import correction_report
from orgmem.pipeline.forgetting import forgetting_scorer
from orgmem.pipeline.inputs import Inputs, existing_checkpoint, gather_inputs, rescore_replay
from orgmem.pipeline.state import load_parent, remove_uncommitted_objects, shared_base
from orgmem.pipeline.underlay import (
    DIGEST_KEY,
    load_underlay,
    underlay_digest,
    underlay_note,
    underlay_record,
)
from orgmem.store import ObjectStore, open_store

logger = logging.getLogger(__name__)


class Reporter(Protocol):
    """What the pipeline needs from its caller (``orgmem.jobs.JobContext`` is one)."""

    @property
    def job_id(self) -> str | None: ...  # None: no job (library use)
    @property
    def params(self) -> dict[str, Any]: ...

    def progress(self, fraction: float, message: str | None = None) -> None: ...
    def check(self) -> None: ...
    def guard_commit(self, session: Session) -> None: ...
    def event(self, message: str, *, level: str = "info", data: dict[str, Any] | None = None) -> None: ...


class LogReporter:
    """Reporter for library use without a job: progress and events go to the log."""

    job_id: str | None = None
    params: dict[str, Any] = {}

    def __init__(self, org: str) -> None:
        self.org = org

    def progress(self, fraction: float, message: str | None = None) -> None:
        if message:
            logger.info(message, extra={"org": self.org, "progress": round(fraction, 3)})

    def check(self) -> None:
        return None

    def guard_commit(self, session: Session) -> None:
        return None

    def event(self, message: str, *, level: str = "info", data: dict[str, Any] | None = None) -> None:
        logger.log(logging.getLevelName(level.upper()), message, extra={"org": self.org})


@dataclass
class ConsolidationOutcome:
    """The job result: what was trained, which checkpoint came out, what the gate said."""

    org: str
    status: str  # promoted | rejected | candidate | quarantined | nothing_to_do
    audience: str = "org"
    checkpoint_id: str | None = None
    parent_id: str | None = None
    created: bool = False
    n_new: int = 0
    n_replay: int = 0
    gate: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The job result: the gate verdict once, headline metrics without per-item details."""
        out = asdict(self)
        out["metrics"] = {k: v for k, v in self.metrics.items() if k not in ("gate", "secret_leak_details")}
        return out


def _stored_decision(ck: Checkpoint) -> GateDecision | None:
    stored = CheckpointMetrics.from_json(ck.metrics).gate
    if not stored:
        return None
    return GateDecision(bool(stored["passed"]), [Check(**c) for c in stored.get("checks", [])])


def _finish_existing(ck_id: str, inputs: Inputs, ctx: Reporter, t0: float) -> ConsolidationOutcome:
    """A retry after the commit: apply the stored gate decision if that never happened."""
    with session_scope(write=True) as session:
        ck = session.get(Checkpoint, ck_id)
        if ck is None:
            raise NotFoundError(f"checkpoint {ck_id!r} of a committed attempt is gone")
        status, metrics, decision = ck.status, CheckpointMetrics.from_json(ck.metrics), _stored_decision(ck)
        if status == CheckpointStatus.CANDIDATE.value and decision is not None:
            status = apply_decision(session, inputs.org_slug, ck_id, decision)
        _consume_corrections(session, inputs, ck_id, status)
    ctx.event(f"checkpoint {ck_id} for these inputs exists ({status}); not training again")
    return ConsolidationOutcome(
        inputs.org_slug,
        status,
        inputs.audience,
        ck_id,
        inputs.parent_id,
        False,
        len(inputs.new),
        len(inputs.replay),
        metrics.gate if metrics.gate is not None else {},
        metrics.to_json(),
        time.time() - t0,
    )


def _consume_corrections(session: Session, inputs: Inputs, ck_id: str, status: str) -> None:
    """A promoted checkpoint consumed the night's corrections; a rejected one leaves them waiting."""
    if inputs.corrections and status == CheckpointStatus.PROMOTED.value:
        mark_consumed(session, [t.id for t in inputs.corrections], ck_id)


def _correction_plan(inputs: Inputs):
    from orgmem.engine.corrections import CorrectionPlan, TaughtAnswer

    fb = get_feedback_settings()
    return CorrectionPlan(
        [TaughtAnswer(t.question, t.answer, t.previous, t.id) for t in inputs.corrections],
        [TaughtAnswer(t.question, t.answer, t.previous, t.id) for t in inputs.replayed_corrections],
        repeats=fb.repeats,
        unlikelihood=fb.unlikelihood_weight,
    )


def _train(base, parent, inputs: Inputs, cfg, ctx: Reporter, underlay: bytes | None):
    """The engine on this night's inputs: in this process, or data parallel over
    ``ORGMEM_CONSOLIDATE_PROCS`` processes (``orgmem.engine.launch``; they load the base themselves)."""
    from orgmem.engine.consolidation import consolidate

    if parent.base_fingerprint is not None and parent.base_fingerprint != base.fingerprint:
        raise IncompatibleBaseError(
            f"org {inputs.org_slug!r} head {inputs.parent_id!r} was trained on base fingerprint "
            f"{parent.base_fingerprint[:16]}…, the configured base {base.name!r} is {base.fingerprint[:16]}…"
        )
    settings = get_settings()
    procs = settings.consolidate_procs
    plan = _correction_plan(inputs)
    if plan and procs > 1:  # the unlikelihood term is not sharded (engine.consolidation)
        if inputs.corrections:
            ctx.event(f"{len(inputs.corrections)} correction(s) tonight: training in one process")
            procs = 1
        else:  # only learned ones to replay: keep the data-parallel night, without their replay
            ctx.event(f"data parallel: {len(inputs.replayed_corrections)} learned correction(s) not replayed")
            plan = None
    new, replay = [c.text for c in inputs.new], [c.text for c in inputs.replay]
    log_extra = {"org": inputs.org_slug, "job": ctx.job_id}
    on_step = training_progress(ctx, start=0.05, end=0.6)
    if procs > 1:
        from orgmem.engine.launch import train_data_parallel

        ctx.progress(0.05, f"training data-parallel over {procs} processes")
        result = train_data_parallel(
            base.name,
            parent.memory,
            parent.train_state,
            new,
            replay,
            cfg.engine,
            underlay,
            procs,
            settings.home / "tmp",
            on_step=on_step,
            log_extra=log_extra,
        )
    else:
        result = consolidate(
            base,
            parent.memory,
            new,
            replay,
            cfg.engine,
            train_state=parent.train_state,
            progress=cfg.pipeline.progress,
            log_extra=log_extra,
            underlay=underlay,
            on_step=on_step,
            corrections=plan,
        )
    result.metrics["procs"] = procs
    return result


def training_progress(ctx: Reporter, *, start: float, end: float, every_s: float = 5.0):
    """An engine ``on_step`` that reports job progress from ``start`` to ``end``, at most every
    ``every_s`` seconds (a database write each), and always at the last step."""
    last = [float("-inf")]  # the first step always reports

    def on_step(done: int, total: int, losses: dict[str, float]) -> None:
        now = time.monotonic()
        if done < total and now - last[0] < every_s:
            return
        last[0] = now
        loss = losses.get("ce")
        ctx.progress(
            start + (end - start) * done / max(total, 1),
            f"training step {done}/{total}" + (f" (loss {loss:.3f})" if loss is not None else ""),
        )

    return on_step


def _commit(  # noqa: PLR0913  # what the night produced, committed in one step
    store: ObjectStore,
    inputs: Inputs,
    result,
    metrics: CheckpointMetrics,
    cfg,
    base,
    ctx: Reporter,
    actor: str,
    underlay: dict | None,
):
    meta = read_metadata(result.memory, "new memory")
    manifest = {
        "pipeline": cfg.pipeline.to_dict(),
        "engine_config": cfg.engine.to_dict(),
        "job_id": ctx.job_id,
        "counts": {"new_chunks": len(inputs.new), "replay_chunks": len(inputs.replay)},
    }
    if underlay is not None:  # a group: which org memory it was trained and judged on
        metrics.underlay = manifest["underlay"] = underlay
    refs = [InputRef(cid, role) for cid, role in inputs.input_refs]
    with session_scope() as session:
        # what governance the training data went through, so a rule change can find this checkpoint
        governance = governance_for_chunks(session, [ref.chunk_id for ref in refs])
        metrics.governance = manifest["governance"] = governance
        draft = CheckpointDraft(
            org=inputs.org_slug,
            parent_id=inputs.parent_id,
            objects={MEMORY: result.memory, TRAIN_STATE: result.train_state},
            manifest=manifest,
            inputs=refs,
            metrics=metrics,
            status=CheckpointStatus.CANDIDATE,
            created_by=actor,
            base_model=base.name,
            base_fingerprint=base.fingerprint,
            memory_kind=meta["kind"],
            memory_config=memory_config(result.memory),
            job_id=ctx.job_id,
            notes=underlay_note(underlay["checkpoint_id"]) if underlay is not None else None,
            digest_extra=inputs.digest_extra,
            audience=inputs.audience,
        )
        commit = commit_checkpoint(session, store, draft, guard=ctx.guard_commit)
        return commit.checkpoint.id, commit.created


def _audience_label(audience: str) -> str:
    return "" if audience == ORG_AUDIENCE else f"group {audience!r}: "


def _freeze_config(ctx: Reporter, cfg) -> None:
    """Record the fully resolved recipe in the job, so a retry on a differently configured
    worker trains exactly the same way (the recipe is part of the checkpoint's digest)."""
    if not ctx.job_id or (ctx.params or {}).get("resolved"):
        return
    from orgmem.jobs import get_job

    frozen = {"engine": cfg.engine.to_dict(), "pipeline": cfg.pipeline.to_dict(), "resolved": True}
    with session_scope(write=True) as session:
        job = get_job(session, ctx.job_id)
        job.params = {**(job.params or {}), **frozen}


def consolidate_org(
    org_slug: str,
    *,
    ctx: Reporter | None = None,
    params: dict[str, Any] | None = None,
    store: ObjectStore | None = None,
) -> ConsolidationOutcome:
    """Consolidate ``org_slug``'s pending chunks into a gated checkpoint (see module docstring).

    ``params["audience"]`` (default ``org``): whose material and lineage; a group is trained as
    its own memory layer set on its own lineage (parent: the group's head).
    """
    t0 = time.time()
    reporter: Reporter = ctx or LogReporter(org_slug)
    params = params if params is not None else dict(reporter.params or {})
    cfg, settings = resolve(params), get_settings()
    actor = str(params.get("actor") or "system")
    audience = validate_audience(str(params.get("audience") or ORG_AUDIENCE))
    _freeze_config(reporter, cfg)
    store = store or open_store(settings=settings)
    extra = {"base_model": settings.base_model, "engine": cfg.engine.to_dict()}
    with session_scope() as session:
        org = get_org(session, org_slug)
        gate_config = GateConfig.from_org(org.gate_config)
        extra.update(underlay_digest(org, audience))
        inputs = gather_inputs(
            session,
            org,
            replay_max=cfg.pipeline.replay_max_chunks,
            digest_extra=extra,
            audience=audience,
            policy=cfg.pipeline.replay_policy,
        )
        existing = existing_checkpoint(session, inputs)
        existing_id = existing.id if existing is not None else None
    grouped = audience != ORG_AUDIENCE
    underlay_id = inputs.digest_extra.get(DIGEST_KEY)
    on_top = f", on org checkpoint {underlay_id or '(none: bare base)'}" if grouped else ""
    reporter.progress(
        0.02,
        f"{_audience_label(audience)}{len(inputs.new)} pending chunk(s), {len(inputs.replay)} replayed, "
        f"{len(inputs.corrections)} approved correction(s), "
        f"parent {inputs.parent_id or '(none: first night)'}{on_top}",
    )
    if existing_id is not None:
        return _finish_existing(existing_id, inputs, reporter, t0)
    if not inputs.new and not inputs.corrections:
        reporter.event("nothing pending: no checkpoint made")
        return ConsolidationOutcome(
            org_slug, "nothing_to_do", audience, None, inputs.parent_id, seconds=time.time() - t0
        )
    with session_scope() as session:
        remove_uncommitted_objects(session, store, inputs.org_id, org_slug)
        parent = load_parent(session, store, inputs.parent_id)
        underlay = load_underlay(session, store, underlay_id)
    base = shared_base(settings.base_model)
    if parent.memory is not None and inputs.policy == "budget":
        inputs = rescore_replay(
            inputs, forgetting_scorer(base, parent.memory, underlay), cfg.pipeline.replay_pool
        )
        reporter.event(
            f"replay: {len(inputs.replay)} of {len(inputs.candidates)} live older chunk(s), "
            "half by age, half the most forgotten"
        )
    reporter.progress(0.05, f"training on base {base.name}")
    result = _train(base, parent, inputs, cfg, reporter, underlay)
    reporter.progress(
        0.6,
        f"trained {result.metrics.get('steps')} steps in {result.seconds:.1f} s "
        f"(loss {result.metrics.get('loss_first')} → {result.metrics.get('loss_last')}); evaluating",
    )
    evaluation = evaluate_candidate(
        base, parent.memory, result.memory, inputs.new, inputs.replay, cfg.pipeline, underlay=underlay
    )
    decision = decide(evaluation, gate_config)  # on the raw values: a NaN metric fails its check
    metrics = CheckpointMetrics(  # finite: what JSON columns can store
        evaluation=finite_json(evaluation),
        engine=finite_json(result.metrics),
        gate=finite_json(decision.to_dict()),
    )
    if inputs.corrections:  # the gate report: answers changed by user-supplied material
        metrics.feedback = correction_report(base, parent.memory, result.memory, inputs.corrections, underlay)
    reporter.progress(0.85, f"evaluated in {metrics.evaluation['eval_seconds']} s; gate {decision.summary()}")
    reporter.check()  # the last point where a cancel or a lost lease stops the job: nothing is written yet
    record = underlay_record(underlay_id, underlay) if grouped else None
    ck_id, created = _commit(store, inputs, result, metrics, cfg, base, reporter, actor, record)
    reporter.progress(0.95, f"committed checkpoint {ck_id}")
    with session_scope(write=True) as session:
        status = apply_decision(session, org_slug, ck_id, decision)
        _consume_corrections(session, inputs, ck_id, status)
    reporter.event(
        f"checkpoint {ck_id} {status}: {decision.summary()}",
        level="info" if decision.passed else "warning",
        data={"gate": metrics.gate},
    )
    return ConsolidationOutcome(
        org_slug,
        status,
        audience,
        ck_id,
        inputs.parent_id,
        created,
        len(inputs.new),
        len(inputs.replay),
        metrics.gate or {},
        metrics.to_json(),
        time.time() - t0,
    )
