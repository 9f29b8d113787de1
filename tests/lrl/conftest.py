import pytest


@pytest.fixture(autouse=True, scope="session")
def sandbox_for_trusted_test_code():
    """Tests check reference solutions (trusted code) through the coding domain. Where no isolation
    tool works they run it unisolated instead of failing; the refusal itself is tested in
    test_sandbox_policy.py, and the hostile programs are skipped with the reason."""
    from lrl.sandbox import find_isolation, permit_unsafe_sandbox

    if find_isolation()[0] is None:
        permit_unsafe_sandbox()
