"""An interactive chat with a GGUF model: the file's own chat template, tokens streamed as they come.

The conversation is kept, so each turn sees the earlier ones; `/reset` forgets them and `/exit`
(or end of input) ends the session. Reading and writing are passed in, so the loop runs the same
on a terminal and under a test feeding stdin.
"""
from __future__ import annotations

from typing import Callable

from backends.llm import SamplingParams

EXIT, RESET = "/exit", "/reset"


def stream_reply(llm, messages: list[dict], params: SamplingParams, write: Callable[[str], None]) -> str:
    """Generate the assistant's reply to `messages`, writing each piece as it is decoded; the full text."""
    tokens = llm.prompt_tokens(messages)
    pieces = []
    for chunk in llm.llama.create_completion(tokens, max_tokens=params.max_tokens, temperature=params.temperature,
                                            top_p=params.top_p, seed=params.seed, stream=True):
        piece = chunk["choices"][0]["text"]
        pieces.append(piece)
        write(piece)
    return "".join(pieces)


def chat_loop(llm, read_line: Callable[[], str | None], write: Callable[[str], None],
              params: SamplingParams = SamplingParams(temperature=0.0, max_tokens=512), system: str | None = None) -> int:
    """Run the conversation until /exit or end of input; returns the number of replies given."""
    history = [{"role": "system", "content": system}] if system else []
    replies = 0
    while True:
        write("> ")
        line = read_line()
        if line is None or line.strip() == EXIT:
            write("\n")
            return replies
        text = line.strip()
        if not text:
            continue
        if text == RESET:
            history = history[:1] if system else []
            write("(conversation reset)\n")
            continue
        history.append({"role": "user", "content": text})
        reply = stream_reply(llm, history, params, write)
        write("\n")
        history.append({"role": "assistant", "content": reply})
        replies += 1
