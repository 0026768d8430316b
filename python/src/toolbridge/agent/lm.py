"""The LM a worker runs an agent with: a DSPy model string, the user's own factory, or a scripted DummyLM.

A factory is named ``module:function`` (``my_team.llm:make_lm``): the module is imported (from
the worker's ``sys.path``: its working directory and ``PYTHONPATH``) and the function is
called with no arguments; it returns any ``dspy.BaseLM``, so a team's own LM client, a
``dspy.LM`` with settings, or a test LM drives the agent.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from toolbridge.agent.model import AgentError
from toolbridge.core.errors import ErrorType

if TYPE_CHECKING:
    import dspy


class LMChoiceError(AgentError):
    """The LM cannot be made as asked (unknown or failing factory, bad script); the message says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ErrorType.VALIDATION_ERROR)


def lm_from_factory(reference: str) -> dspy.BaseLM:
    """The LM built by the factory ``module:function``; ``LMChoiceError`` says what is wrong."""
    import dspy

    module_name, sep, function_name = reference.partition(":")
    if not sep or not module_name or not function_name:
        raise LMChoiceError(
            f"an LM factory is named module:function (e.g. my_team.llm:make_lm), got {reference!r}"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise LMChoiceError(
            f"cannot import {module_name!r} for the LM factory {reference}: {error} "
            "(the worker imports from its working directory and PYTHONPATH)"
        ) from error
    factory = getattr(module, function_name, None)
    if not callable(factory):
        raise LMChoiceError(
            f"module {module_name!r} has no function {function_name!r} (LM factory {reference})"
        )
    try:
        lm = factory()
    except Exception as error:
        raise LMChoiceError(f"the LM factory {reference} failed: {type(error).__name__}: {error}") from error
    if not isinstance(lm, dspy.BaseLM):
        raise LMChoiceError(
            f"the LM factory {reference} returned {type(lm).__name__}, not a dspy.BaseLM (e.g. dspy.LM(...))"
        )
    return lm


def scripted_lm(script: str) -> dspy.BaseLM:
    """The scripted DummyLM named ``script``: a built-in script's name (``shop``) or a JSON file of turns."""
    from toolbridge.agent.demo import SCRIPTS
    from toolbridge.agent.scripted import ScriptedLM

    if script in SCRIPTS:
        return SCRIPTS[script]()
    path = Path(script)
    if not path.is_file():
        raise LMChoiceError(
            f"--script {script!r} is neither a known script ({', '.join(SCRIPTS)}) nor a file"
        )
    try:
        turns = json.loads(path.read_text())
    except ValueError as error:
        raise LMChoiceError(f"--script {script}: not JSON ({error})") from None
    if not isinstance(turns, list) or not all(isinstance(turn, dict) for turn in turns):
        raise LMChoiceError(f"--script {script}: expected a JSON list of objects (one LM answer each)")
    return ScriptedLM(turns)


def choose_lm(*, model: str | None, factory: str | None, script: str | None) -> dspy.BaseLM:
    """The worker's LM: the ``factory``'s, else ``dspy.LM(model)``, else the scripted DummyLM ``script``."""
    import dspy

    if factory:
        return lm_from_factory(factory)
    if model:
        return dspy.LM(model)
    if script:
        return scripted_lm(script)
    raise LMChoiceError(
        "no LM: set TOOLBRIDGE_LM (e.g. TOOLBRIDGE_LM=openai/gpt-4o-mini with OPENAI_API_KEY set), "
        "pass --lm, pass --lm-factory module:function for your own, or pass --script for a scripted DummyLM"
    )
