"""The scripted LM of the README demo: a shop assistant over ``examples/tools/shop-tools.ts``.

It answers ``SHOP_QUESTION`` the way a capable LM would: search the policies for the express
shipping price, read the price from the search result, have the calculator add it to the
items, then answer. It only suits that question and those tools; set ``TOOLBRIDGE_LM`` to use
a real LM for anything else.
"""

from __future__ import annotations

import re
from typing import Any

from toolbridge.agent.model import AgentError
from toolbridge.agent.scripted import ScriptedLM, answer_turn, finish_turn, tool_turn
from toolbridge.core.errors import ErrorType

SHOP_QUESTION = "I'm ordering 3 items at 14.50 EUR each with express shipping. What will I pay in total?"
SHOP_TOOLS = ("search_docs", "read_doc", "calculate")

_EUR_AMOUNT = re.compile(r"(\d+(?:\.\d+)?)\s*EUR")


def _express_price(search_results: Any) -> str:
    """The price in the snippet about express shipping, as the search tool returned it."""
    hits = search_results if isinstance(search_results, list) else []
    for hit in hits:
        snippet = str(hit.get("snippet", "")) if isinstance(hit, dict) else ""
        if "xpress" in snippet and (match := _EUR_AMOUNT.search(snippet.split("xpress", 1)[1])):
            return match.group(1)
    raise AgentError(
        "the scripted demo LM expected an express shipping price in the search results, "
        f"got {search_results!r}; it only suits the bundled shop corpus (set TOOLBRIDGE_LM to use a real LM)",
        ErrorType.INTERNAL_ERROR,
    )


def _total(seen: list[Any]) -> dict[str, Any]:
    price, total = _express_price(seen[0]), seen[1]
    return answer_turn(
        f"The calculator gave {total} for 3 x 14.50 EUR plus {price} EUR express shipping.",
        answer=f"{float(total):.2f} EUR: 3 x 14.50 EUR = 43.50 EUR for the items plus {price} EUR "
        "for express shipping.",
    )


def shop_script() -> ScriptedLM:
    """search_docs -> calculate (with the price from the search result) -> finish -> answer."""
    return ScriptedLM(
        [
            tool_turn(
                "I need the express shipping price; the shipping policy should state it.",
                "search_docs",
                query="express shipping cost",
                limit=2,
            ),
            lambda seen: tool_turn(
                f"Express shipping costs {_express_price(seen[0])} EUR. "
                "I'll add it to 3 items at 14.50 EUR with the calculator.",
                "calculate",
                expression=f"3 * 14.50 + {_express_price(seen[0])}",
            ),
            lambda seen: finish_turn(f"The total is {seen[1]} EUR; I can answer now."),
            _total,
        ]
    )


#: Scripts ``python -m toolbridge.agent --script NAME`` knows by name.
SCRIPTS = {"shop": shop_script}
