"""The one escaping helper for text we did not write, and length limits that respect it."""

from __future__ import annotations

import re

#: An escaped entity or a Slack control sequence (`<@U1>`, `<!date^…|…>`, `<url|label>`):
#: cutting inside one would show half of it, or leave a `<` that swallows what follows.
_UNSPLITTABLE = re.compile(r"&[a-z]{2,4};|<[^<>]*>")


def escape_mrkdwn(text: str) -> str:
    """Text we did not write (names, titles, input), made inert for mrkdwn and fallback text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def shorten(text: str, limit: int) -> str:
    """Raw (unescaped) text cut to `limit` characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fit(markdown: str, limit: int) -> str:
    """Escaped mrkdwn cut to at most `limit` characters, never inside an entity or a `<…>`."""
    if len(markdown) <= limit:
        return markdown
    cut = limit - 1
    for match in _UNSPLITTABLE.finditer(markdown, max(0, cut - 3000)):
        if match.start() >= cut:
            break
        if cut < match.end():
            cut = match.start()
            break
    return markdown[:cut] + "…"
