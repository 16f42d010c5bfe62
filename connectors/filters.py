"""Which files are worth learning from: skip rules shared by file-based connectors (git, docs).

Each rule returns a short reason ("vendored", "binary", ...) so skips can be counted by reason;
a silent skip would make a missing document impossible to explain.
"""

from __future__ import annotations

from pathlib import PurePosixPath

DEFAULT_MAX_FILE_BYTES = 1_000_000

# Folders whose content is third-party, generated or tool state: nobody's knowledge lives there.
VENDORED_DIRS = frozenset(
    {
        "node_modules",
        "vendor",
        "third_party",
        "bower_components",
        "site-packages",
        ".venv",
        "venv",
        "__pycache__",
        ".tox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".gradle",
        "Pods",
        ".git",
        ".hg",
        ".svn",
        ".idea",
        ".vscode",
    }
)
GENERATED_DIRS = frozenset({"dist", "build", "target", "out", ".next", ".nuxt", "coverage", "htmlcov"})
GENERATED_SUFFIXES = (".min.js", ".min.css", ".map", ".pb.go", "_pb2.py", "_pb2_grpc.py", ".pyc", ".pyo")
LOCKFILES = frozenset(
    {
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "poetry.lock",
        "Pipfile.lock",
        "Cargo.lock",
        "composer.lock",
        "Gemfile.lock",
        "go.sum",
        "uv.lock",
        "pdm.lock",
        "mix.lock",
        "flake.lock",
    }
)
BINARY_SUFFIXES = frozenset(
    {
        ".png",
        ".jpg",
        ".jpeg",
        ".gif",
        ".bmp",
        ".ico",
        ".webp",
        ".tif",
        ".tiff",
        ".psd",
        ".pdf",
        ".zip",
        ".gz",
        ".tgz",
        ".bz2",
        ".xz",
        ".7z",
        ".rar",
        ".tar",
        ".jar",
        ".war",
        ".class",
        ".so",
        ".dll",
        ".dylib",
        ".exe",
        ".o",
        ".a",
        ".lib",
        ".bin",
        ".dat",
        ".db",
        ".sqlite",
        ".woff",
        ".woff2",
        ".ttf",
        ".otf",
        ".eot",
        ".mp3",
        ".mp4",
        ".wav",
        ".ogg",
        ".mov",
        ".avi",
        ".webm",
        ".pt",
        ".pth",
        ".safetensors",
        ".gguf",
        ".onnx",
        ".npy",
        ".npz",
        ".pkl",
        ".parquet",
        ".xlsx",
        ".docx",
        ".pptx",
        ".iso",
        ".dmg",
        ".wasm",
    }
)
_BINARY_SNIFF_BYTES = 8000  # git's own heuristic: a NUL in the first 8000 bytes means binary


def path_skip_reason(
    path: str, size: int | None = None, max_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> str | None:
    """Reason to skip ``path`` (repo-relative, '/'-separated) before reading it, or None."""
    pure = PurePosixPath(path)
    dirs = pure.parts[:-1]
    if any(part in VENDORED_DIRS for part in dirs):
        return "vendored"
    if any(part in GENERATED_DIRS for part in dirs):
        return "generated"
    name = pure.name
    if name in LOCKFILES:
        return "lockfile"
    lower = name.lower()
    if lower.endswith(GENERATED_SUFFIXES):
        return "generated"
    if pure.suffix.lower() in BINARY_SUFFIXES:
        return "binary"
    if size is not None and size > max_bytes:
        return "too-large"
    return None


def decode_text(data: bytes) -> tuple[str | None, str | None]:
    """(text, None) for UTF-8 text, else (None, reason): "binary" for NUL bytes, "not-utf8" otherwise."""
    if b"\x00" in data[:_BINARY_SNIFF_BYTES]:
        return None, "binary"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, "not-utf8"
    return text.removeprefix("\ufeff"), None
