"""A base's meta-trained Titans initialisation on disk: ``<models_dir>/<base>/titans_meta/init.safetensors``.

Meta-training runs once per base model; every org's Titans memory then starts from its result. The
file records the base fingerprint and the architecture it was trained for, so it is never applied
to another base (refused with ``IncompatibleBaseError``) or to a memory of another shape.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor

from orgmem.config import get_settings
from orgmem.errors import IncompatibleBaseError, IntegrityError, NotFoundError, OrgmemError
from orgmem.memory.titans.config import TitansConfig

logger = logging.getLogger(__name__)

FORMAT = "orgmem-titans-init"
INIT_FILE = "init.safetensors"


def meta_dir(base) -> Path:
    """Folder of the base's Titans meta-training (checkpoints and the final initialisation)."""
    name = base.path.name if getattr(base, "path", None) is not None else str(base.name)
    return get_settings().models_root / name / "titans_meta"


def save_meta_init(path: Path, tensors: dict[str, Tensor], *, base, config: TitansConfig,
                   info: dict[str, Any]) -> Path:
    """Write the initialisation atomically (temp file + rename: never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "base_fingerprint": base.fingerprint, "base_name": str(base.name),
            "architecture": json.dumps(config.architecture(), sort_keys=True),
            "info": json.dumps(info, sort_keys=True, default=str)}
    tmp = path.with_name(path.name + ".partial")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return path


def read_meta_init(path: Path, base) -> tuple[dict[str, Tensor], dict[str, Any], dict[str, Any]]:
    """(tensors, architecture, info) of a stored initialisation made for ``base``."""
    if not path.is_file():
        raise NotFoundError(f"no Titans meta-initialisation at {path}: run `orgmem memory meta-train`")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != FORMAT:
                raise IntegrityError(f"{path}: not a Titans initialisation (format {meta.get('format')!r})")
            if meta.get("base_fingerprint") != base.fingerprint:
                raise IncompatibleBaseError(
                    f"Titans initialisation {path} was meta-trained on base {meta.get('base_name')!r} "
                    f"(fingerprint {str(meta.get('base_fingerprint'))[:16]}…), not on {base.name!r} "
                    f"(fingerprint {base.fingerprint[:16]}…)")
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise IntegrityError(f"{path}: unreadable Titans initialisation ({exc})") from exc
    return tensors, json.loads(meta["architecture"]), json.loads(meta.get("info", "{}"))


def resolve_meta_init(base, config: TitansConfig) -> tuple[dict[str, Tensor] | None, Path | None]:
    """The initialisation ``config.meta_init`` asks for, or (None, None) for the untrained one."""
    mode = config.meta_init
    if mode == "none":
        return None, None
    path = meta_dir(base) / INIT_FILE if mode in ("auto", "required") else Path(mode).expanduser()
    if mode == "auto" and not path.is_file():
        logger.warning("no meta-trained Titans initialisation: using the untrained one (stores little)",
                       extra={"base": base.name, "path": str(path)})
        return None, None
    tensors, arch, _ = read_meta_init(path, base)
    wanted = config.architecture()
    diff = sorted(k for k in set(arch) | set(wanted) if arch.get(k) != wanted.get(k))
    if diff:
        trained, asked = {k: arch.get(k) for k in diff}, {k: wanted.get(k) for k in diff}
        message = f"Titans initialisation {path} was trained for {trained}, the memory asks for {asked}"
        if mode != "auto":
            raise OrgmemError(message)
        logger.warning(message + ": using the untrained initialisation", extra={"base": base.name})
        return None, None
    return tensors, path
