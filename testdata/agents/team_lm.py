"""LM factories for the tests of ``--lm-factory`` / ``lmFactory``: what a team's own LM module looks like.

``make_lm`` returns a scripted LM that multiplies with the shop's calculator and answers with
the result; it names itself ``team/scripted-calculator`` so a run's record shows whose LM drove
it (``adding_lm`` does the same with an ``add`` tool). ``broken`` fails the way a
misconfigured client would.
"""

from __future__ import annotations

from toolbridge.agent.scripted import ScriptedLM, answer_turn, finish_turn, tool_turn


def make_lm() -> ScriptedLM:
    lm = ScriptedLM(
        [
            tool_turn("Multiply with the calculator.", "calculate", expression="6 * 7"),
            finish_turn("I have the product."),
            lambda seen: answer_turn("The calculator multiplied.", answer=str(seen[0])),
        ]
    )
    lm.model = "team/scripted-calculator"
    return lm


def adding_lm() -> ScriptedLM:
    """The same with an ``add(a, b)`` tool (the warm workers' tests serve a Python one)."""
    lm = ScriptedLM(
        [
            tool_turn("Add with the tool.", "add", a=20, b=22),
            finish_turn("I have the sum."),
            lambda seen: answer_turn("The tool added.", answer=str(seen[0])),
        ]
    )
    lm.model = "team/scripted-adder"
    return lm


def broken() -> ScriptedLM:
    raise RuntimeError("TEAM_LM_KEY is not set")


def not_an_lm() -> str:
    return "gpt-4o-mini"
