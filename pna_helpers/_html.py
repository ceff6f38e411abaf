"""The one way values from outside reach HTML: OSM names and tags, place names (CLI
arguments, places files), file names, log and error text.

Every writer of HTML in ``pna_helpers`` (map tooltips, layer names and legends, the report,
the ``pna report --many`` index, notebook displays) goes through these helpers:

* :func:`text` - a value as HTML text (element content or a quoted attribute value);
* :func:`href` - a link target: relative or ``http(s)``/``file`` URLs only, escaped;
* :func:`script_json` - data for a ``<script>`` block, which can never close it;
* :data:`TEXT_NODE_JS` - the JavaScript that map tooltips use to show text as text (a DOM text
  node, never ``innerHTML``);
* :func:`page` - a standalone HTML document around trusted body HTML, the title escaped;
* :func:`no_math` / :data:`NO_MATH_CLASS` - HTML that notebooks never typeset as LaTeX maths
  (JupyterLab reads ``$12.30 and $4.00`` as the formula ``12.30 and``); :func:`dollar` - a
  dollar amount that stays text in any renderer.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

__all__ = ["NO_MATH_CLASS", "TEXT_NODE_JS", "dollar", "href", "no_math", "page",
           "script_json", "text"]

#: The body style of the standalone pages (plan, QA, explain reports).
PAGE_STYLE = "body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"


def page(title: Any, body: str, style: str = "") -> str:
    """A standalone HTML document: ``title`` escaped, ``body`` as given (already safe HTML).

    Parameters
    ----------
    title : Any
        The page title (outside text: escaped here).
    body : str
        The body's HTML, built with these helpers.
    style : str, optional
        CSS added after :data:`PAGE_STYLE`.

    Returns
    -------
    str
        ``<!doctype html>...</html>``, UTF-8 declared.
    """
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{text(title)}</title>"
            f"<style>{PAGE_STYLE}{style}</style></head><body>{body}</body></html>")


def text(value: Any) -> str:
    """``value`` as HTML text: ``& < > " '`` escaped; ``None`` and NaN as ``""``."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return html.escape(str(value), quote=True)


_SAFE_URL = re.compile(r"^(?:https?://|file://|[^:/?#]*(?:[/?#]|$))", re.I)


def href(url: Any) -> str:
    """A link target for ``href="..."``: relative paths and ``http(s)``/``file`` URLs (escaped);
    anything else (``javascript:``, ``data:``, ``vbscript:`` ...) becomes ``"#"``."""
    u = "" if url is None else str(url).strip()
    if not u or not _SAFE_URL.match(u) or re.search(r"[\x00-\x1f]", u):
        return "#"
    return html.escape(u, quote=True)


def script_json(obj: Any) -> str:
    """JSON for inside ``<script>``: ``<``, ``>``, ``&`` and the JS line separators escaped,
    so no string value can end the script element or start a comment."""
    s = json.dumps(obj, separators=(",", ":"))
    return (s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


#: ``pnaText(s)``: a tooltip body showing ``s`` as text, one line per ``\n`` (Leaflet inserts a
#: DOM node as it is; it would parse a string as HTML).
#: The box is as wide as its longest line (up to 36em, then lines wrap): a tooltip opened near
#: the right edge of a map otherwise shrinks to the room left and breaks every line.
TEXT_NODE_JS = ("function pnaText(s) { var d = document.createElement('div');"
                " d.style.whiteSpace = 'pre-line'; d.style.width = 'max-content';"
                " d.style.maxWidth = '36em'; d.style.overflowWrap = 'anywhere';"
                " d.textContent = s; return d; }")


#: Classes MathJax 3 (JupyterLab 4, Notebook 7) and MathJax 2 (classic Notebook, nbconvert)
#: skip: nothing inside an element with them is typeset as maths.
NO_MATH_CLASS = "tex2jax_ignore mathjax_ignore"


def no_math(fragment: str, tag: str = "div") -> str:
    """``fragment`` (HTML) inside a ``<tag>`` that notebooks never typeset as LaTeX maths:
    dollar amounts and outside text with ``$`` stay as written."""
    return f'<{tag} class="{NO_MATH_CLASS}">{fragment}</{tag}>'


def dollar(amount: str) -> str:
    """A dollar amount as HTML (``amount`` is already-formatted text such as ``"12.30"``): the
    ``$`` in its own element, so no maths renderer can pair it with another ``$`` (MathJax and
    KaTeX look for ``$...$`` within one run of text)."""
    return f'<span class="pna-dollar">$</span>{text(amount)}'
