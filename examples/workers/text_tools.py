"""Python tools for the workers demo (examples/workers/demo.ts): plain functions made tools
with ``@toolbridge.tool``; their schemas come from the type hints and docstrings."""

from __future__ import annotations

import re
from collections.abc import Iterator

import toolbridge

_WORD = re.compile(r"[A-Za-z']+")


@toolbridge.tool
def summarize(text: str, max_words: int = 12) -> str:
    """Shortens a text to its first words.

    Args:
        text: the text to shorten
        max_words: at most this many words
    """
    words = text.split()
    return " ".join(words[:max_words]) + (" …" if len(words) > max_words else "")


@toolbridge.tool
def word_count(text: str) -> dict[str, int]:
    """Counts the words of a text and its distinct words.

    Args:
        text: the text to count
    """
    words = [w.lower() for w in _WORD.findall(text)]
    return {"words": len(words), "distinct": len(set(words))}


@toolbridge.tool
def sentences(text: str) -> Iterator[str]:
    """Streams a text's sentences one by one.

    Args:
        text: the text to split
    """
    for sentence in re.split(r"(?<=[.!?])\s+", text.strip()):
        if sentence:
            yield sentence
