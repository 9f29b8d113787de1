"""The OpenAI-compatible backend against llama-cpp-python's own server (`python -m llama_cpp.server`) on 127.0.0.1."""
import socket
import subprocess
import sys
import time

import pytest

pytest.importorskip("llama_cpp.server.app", reason="needs llama-cpp-python's server extra (pip install k1[server])")
pytest.importorskip("gguf")
pytest.importorskip("tokenizers")

from backends.llm import Request, SamplingParams  # noqa: E402
from backends.spec import BackendOptions, build_llm  # noqa: E402
from tests.backends.export.peft_fixtures import tiny_gguf  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    """The server on a tiny GGUF with a chat template; yields its base URL."""
    import httpx

    path, _, _ = tiny_gguf(tmp_path_factory.mktemp("server"), "qwen2")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(path), "--host", "127.0.0.1",
                             "--port", str(port), "--n_ctx", "512", "--n_threads", "1", "--chat_format", "chatml"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(240):
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited: {proc.stderr.read().decode()[-500:]}")
            try:
                if httpx.get(f"{url}/models", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail("llama_cpp.server did not start within 2 minutes")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_concurrent_bulk_call_answers_as_one_at_a_time(llama_server):
    requests = [Request([{"role": "user", "content": q}], SamplingParams(max_tokens=8))
                for q in ("the cat", "what is 2 + 3 ?", "yes", "no no", "the mat sat", "answer: yes")]
    one = build_llm(f"openai:{llama_server}#tiny", BackendOptions(parallel=1)).complete_many(requests)
    many_llm = build_llm(f"openai:{llama_server}#tiny", BackendOptions(parallel=4))
    assert many_llm.parallel == 4
    many = many_llm.complete_many(requests)
    assert [c.text for c in many] == [c.text for c in one]
    assert all(c.output_tokens >= 1 and c.backend == "openai" for c in many)
