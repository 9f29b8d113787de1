import os
import sys

# Tests import the top-level modules (k1core, lrl, backends, cli) from the checkout.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import pytest  # noqa: E402


def shipped_model(alias: str):
    """The PyPI-shipped GGUF for `alias`, assembled and hash-checked; skip when its extra is absent."""
    from importlib import metadata

    from backends.model_assets import ASSETS, assemble

    asset = ASSETS[alias]
    try:
        metadata.distribution(asset.parts[0].distribution)
    except metadata.PackageNotFoundError:
        pytest.skip(f"{alias}: the {asset.extra} extra is not installed ({asset.install_hint})")
    return assemble(asset)


@pytest.fixture(scope="session")
def qwen_gguf():
    """Path of the real Qwen2.5-Coder-0.5B-Instruct Q4_K_M GGUF."""
    return shipped_model("qwen0.5b")


@pytest.fixture(autouse=True, scope="session")
def no_calibrated_speeds(tmp_path_factory):
    """Pre-run estimates use the shipped speeds, whatever `k1 models --calibrate` stored on this machine."""
    path = tmp_path_factory.mktemp("speed") / "speed.json"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("backends.local_speed.speed_file", lambda: path)
        yield path
