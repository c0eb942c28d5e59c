"""What a model or deployment name reveals about the chat parameters it takes.

Only names that say what they are count: `o4-mini`, `gpt-5-mini`, `gpt-4.1`. An Azure deployment
called `prod-chat` reveals nothing, so nothing is guessed for it: the request goes out and the
service's own 400 comes back as a typed error (see chat_api.py).
"""

from __future__ import annotations

import re
from typing import Optional, Tuple

REASONING = "reasoning"
NON_REASONING = "non-reasoning"

# o1, o3, o3-mini, o4-mini, ... and the gpt-5 family (gpt-5, gpt-5-mini, gpt-5.1, ...).
_O_SERIES = re.compile(r"^o\d", re.IGNORECASE)
_GPT_5 = re.compile(r"^gpt-5", re.IGNORECASE)
# Chat models from before reasoning: they refuse reasoning_effort and verbosity.
_NON_REASONING = re.compile(r"^(gpt-4|gpt-3\.5|gpt-35)", re.IGNORECASE)
# o3 and o4-mini also refuse `stop` (api-notes-2026 section 3).
_WITHOUT_STOP = re.compile(r"^(o3|o4)", re.IGNORECASE)

#: Inputs every reasoning model refuses (api-notes-2026 section 3, footnote 1).
REASONING_REJECTS: Tuple[str, ...] = ("temperature", "top_p", "presence_penalty", "frequency_penalty",
                                      "logprobs", "top_logprobs", "logit_bias", "max_tokens")
#: Inputs only reasoning models take.
REASONING_ONLY: Tuple[str, ...] = ("reasoning_effort",)
#: Inputs only the gpt-5 family takes.
GPT_5_ONLY: Tuple[str, ...] = ("verbosity",)


def family(model: str) -> Optional[str]:
    """REASONING or NON_REASONING when the name says so, else None (nothing is guessed)."""
    if _O_SERIES.match(model) or _GPT_5.match(model):
        return REASONING
    if _NON_REASONING.match(model):
        return NON_REASONING
    return None


def refused_inputs(model: str) -> Tuple[str, ...]:
    """The inputs a model known by its name refuses; empty for names that reveal nothing."""
    kind = family(model)
    if kind == REASONING:
        extra = ("stop",) if _WITHOUT_STOP.match(model) else ()
        return REASONING_REJECTS + extra + (() if _GPT_5.match(model) else GPT_5_ONLY)
    if kind == NON_REASONING:
        return REASONING_ONLY + GPT_5_ONLY
    return ()


def refusal_reason(model: str, name: str) -> str:
    """Why `model` refuses input `name`, in words a workflow builder can act on."""
    if family(model) == REASONING:
        if name in REASONING_REJECTS or name == "stop":
            return (f"{model!r} is a reasoning model, which refuses {name}; leave it unset "
                    "(reasoning models use max_completion_tokens and reasoning_effort instead)")
        return f"{model!r} is not a gpt-5 family model; only those take {name}; leave it unset"
    return f"{model!r} is not a reasoning model, so it refuses {name}; leave it unset"
