"""A scripted language model for ReAct agents: ``dspy.utils.DummyLM`` driven by a list of turns.

Each LM call consumes one turn. A turn is the dict of output fields the LM answers with, or
a function of the observations the prompt shows so far, for a turn that uses an earlier
tool's result (the way a real LM reads it from its prompt)::

    lm = ScriptedLM([
        tool_turn("Add them first.", "add", a=2, b=3),
        lambda seen: tool_turn("Now add 10.", "add", a=seen[-1], b=10),
        finish_turn("I have the sum."),
        lambda seen: answer_turn("The tools said so.", answer=str(seen[-2])),
    ])

A ReAct run makes one call per step (``next_thought``, ``next_tool_name``,
``next_tool_args``; the last step calls the ``finish`` tool), then one call that extracts the
signature's outputs (``reasoning`` plus the output fields).
"""

from __future__ import annotations

import ast
import json
import re
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from dspy.utils import DummyLM
from dspy.utils.callback import BaseCallback

from toolbridge.agent.model import AgentError
from toolbridge.core.errors import ErrorType

Turn = Mapping[str, Any] | Callable[[list[Any]], Mapping[str, Any]]

# ChatAdapter (DummyLM's adapter) renders each trajectory entry as a "[[ ## observation_<i> ## ]]"
# section, ended by the next section or by the closing "Respond with ..." instruction.
_OBSERVATION = re.compile(
    r"\[\[ ## observation_(\d+) ## \]\]\n(.*?)"
    r"(?=\n\n\[\[ ## |\n\nRespond with the corresponding output fields|\Z)",
    re.DOTALL,
)


def tool_turn(thought: str, tool: str, /, **args: Any) -> dict[str, Any]:
    """A ReAct step that calls ``tool`` with ``args``."""
    return {"next_thought": thought, "next_tool_name": tool, "next_tool_args": args}


def finish_turn(thought: str) -> dict[str, Any]:
    """The ReAct step that ends the loop (DSPy's built-in ``finish`` tool)."""
    return tool_turn(thought, "finish")


def answer_turn(reasoning: str, **outputs: Any) -> dict[str, Any]:
    """The extraction call after ``finish``: the reasoning and the signature's output fields."""
    return {"reasoning": reasoning, **outputs}


# How ChatAdapter shows a list: "«item»" for one item, "[1] «item»\n[2] «item»" for more, and
# "«««\n    line\n    line\n»»»" for an item with line breaks or guillemets.
_LIST_ITEM = re.compile(r"(?:^|\n)(?:\[\d+\] )?(?:«««\n(.*?)\n»»»|«(.*?)»)(?=\n\[\d+\] |\Z)", re.DOTALL)


def observations_in(messages: Sequence[Mapping[str, Any]]) -> list[Any]:
    """The observations in the last user message's trajectory, in step order, decoded as values.

    Decoding undoes how ChatAdapter renders them: JSON for numbers and maps, a numbered list of
    «items» (each ``str(item)``) for lists; anything else stays text.
    """
    text = next((str(m.get("content", "")) for m in reversed(messages) if m.get("role") == "user"), "")
    found = {int(match.group(1)): _decode(match.group(2).strip()) for match in _OBSERVATION.finditer(text)}
    return [found[i] for i in sorted(found)]


def _decode(text: str) -> Any:
    if text.startswith("«") or text.startswith("[1] «"):
        items = [
            _literal(textwrap.dedent(block) if block else inline)
            for block, inline in _LIST_ITEM.findall(text)
        ]
        if items:
            return items
    return _literal(text)


def _literal(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)  # str() of a dict or list item
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


class ScriptExhaustedError(AgentError):
    """The agent called the scripted LM more often than the script has turns."""

    def __init__(self, turns: int) -> None:
        super().__init__(
            f"all {turns} turns of the scripted LM are used and the agent asked for another; "
            "a ReAct run needs one turn per step (the last one calling 'finish') plus one answer turn",
            ErrorType.INTERNAL_ERROR,
        )


class ScriptedLM(DummyLM):  # type: ignore[misc]  # dspy is untyped
    """``DummyLM`` answering with scripted turns; a callable turn gets the observations seen so far."""

    def __init__(self, turns: Sequence[Turn]) -> None:
        self.turns = list(turns)
        #: How many turns have been used.
        self.used = 0
        #: The observations in the latest prompt: what a callable turn is given.
        self.seen: list[Any] = []
        # DummyLM takes a list of answers; any other iterable works the same way (it calls next()).
        super().__init__(self._answers())
        self.callbacks.append(_PromptReader(self))

    def _answers(self) -> Iterator[Mapping[str, Any]]:
        for turn in self.turns:
            self.used += 1
            yield turn(list(self.seen)) if callable(turn) else turn
        raise ScriptExhaustedError(len(self.turns))


class _PromptReader(BaseCallback):  # type: ignore[misc]  # dspy is untyped
    """Reads the observations from each prompt just before the scripted answer is picked."""

    def __init__(self, lm: ScriptedLM) -> None:
        self.lm = lm

    def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        if instance is self.lm:
            self.lm.seen = observations_in(inputs.get("messages") or [])
