"""Model assembly from part packages, using throwaway distributions installed on sys.path."""
import hashlib
import importlib.metadata as metadata

import pytest

from backends.model_assets import (QWEN_0_5B, QWEN_1_5B, ModelAsset, PartFile, asset_status, assemble, assembled_path,
                                   user_cache_dir)
from k1core.errors import UserError


def install_fake_parts(root, chunks):
    """Write distributions `k1-fake-part{i}` (dist-info + data file) under `root`; returns their PartFiles."""
    parts = []
    for i, chunk in enumerate(chunks):
        info = root / f"k1_fake_part{i}-0.1.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: k1-fake-part{i}\nVersion: 0.1\n")
        data = root / f"k1_fake_part{i}" / "data"
        data.mkdir(parents=True)
        (data / f"part{i}.bin").write_bytes(chunk)
        parts.append(PartFile(f"k1-fake-part{i}", f"k1_fake_part{i}/data/part{i}.bin"))
    return tuple(parts)


@pytest.fixture
def fake_asset(tmp_path, monkeypatch):
    chunks = [b"GGUF" + bytes(range(200)), bytes(100) * 3, b"tail"]
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    parts = install_fake_parts(tmp_path / "site", chunks)
    whole = b"".join(chunks)
    return ModelAsset("fake", "fake.gguf", parts, hashlib.sha256(whole).hexdigest(), len(whole), "MIT"), whole


def test_assembles_verifies_and_reuses(fake_asset, tmp_path, monkeypatch):
    asset, whole = fake_asset
    path = assemble(asset, tmp_path / "cache")
    assert path.read_bytes() == whole and list(path.parent.iterdir()) == [path]  # no temp file left behind
    monkeypatch.setattr(metadata, "distribution", lambda name: pytest.fail("a valid file must be reused"))
    assert assemble(asset, tmp_path / "cache") == path


def test_corrupt_assembled_file_is_rebuilt(fake_asset, tmp_path):
    asset, whole = fake_asset
    path = assembled_path(asset, tmp_path)
    path.write_bytes(b"half a download")
    assert assemble(asset, tmp_path).read_bytes() == whole


def test_missing_part_package_names_the_install_command(fake_asset, tmp_path):
    asset, _ = fake_asset
    broken = ModelAsset(asset.alias, asset.filename, asset.parts + (PartFile("k1-absent-part", "x/y.bin"),),
                        asset.sha256, asset.size, asset.license)
    with pytest.raises(UserError, match=r"k1-absent-part.*pip install 'k1\[models\]'"):
        assemble(broken, tmp_path)
    assert asset_status(broken, tmp_path)["parts_installed"] is False


def test_wrong_hash_is_one_line_and_leaves_no_file(fake_asset, tmp_path):
    asset, _ = fake_asset
    wrong = ModelAsset(asset.alias, asset.filename, asset.parts, "0" * 64, asset.size, asset.license)
    with pytest.raises(UserError, match="does not match its checksum") as err:
        assemble(wrong, tmp_path / "cache")
    assert "\n" not in str(err.value) and list((tmp_path / "cache").iterdir()) == []


def test_cache_dir_follows_xdg(monkeypatch, tmp_path):
    import sys

    if sys.platform == "darwin":
        assert user_cache_dir().parts[-4:] == ("Library", "Caches", "k1", "models")
    else:
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
        assert user_cache_dir() == tmp_path / "k1" / "models"


def test_status_reports_the_assembled_file(fake_asset, tmp_path):
    asset, whole = fake_asset
    assemble(asset, tmp_path)
    status = asset_status(asset, tmp_path)
    assert status["assembled"] and status["hash_ok"] and status["size"] == len(whole)


def test_teacher_parts_are_named_in_numeric_order_and_hint_at_their_extra(tmp_path):
    names = [part.relative_path.rsplit("/", 1)[-1] for part in QWEN_1_5B.parts]
    assert names == [f"part{i:02d}.bin" for i in range(1, 23)]
    missing = ModelAsset("t", "t.gguf", (PartFile("k1-absent-part", "x/y.bin"),), "0" * 64, 1, "MIT", extra="teacher")
    with pytest.raises(UserError, match=r"pip install 'k1\[teacher\]'"):
        assemble(missing, tmp_path)


@pytest.mark.parametrize("asset", [QWEN_0_5B, QWEN_1_5B], ids=lambda a: a.alias)
def test_real_parts_assemble_to_the_published_hash(asset):
    try:
        metadata.distribution(asset.parts[0].distribution)
    except metadata.PackageNotFoundError:
        pytest.skip(f"the {asset.extra} extra is not installed")
    path = assemble(asset)
    assert path.stat().st_size == asset.size and asset_status(asset)["hash_ok"]
