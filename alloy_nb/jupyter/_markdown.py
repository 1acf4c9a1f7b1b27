"""A small, safe Markdown → HTML converter for the streaming view (no dependency).

Everything is HTML-escaped first; only a fixed subset (headings, emphasis, code, fences,
lists, quotes, tables, http(s) links) becomes markup. ``render.py`` decides *what* to show.
"""

from __future__ import annotations

import html
import re

__all__ = ["close_open_fence", "markdown_to_html"]


_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})\s*([\w+#.-]*)")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_HR = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")
_UL = re.compile(r"^(\s*)[-*+]\s+(.*)$")
_OL = re.compile(r"^(\s*)(\d{1,9})[.)]\s+(.*)$")
_QUOTE = re.compile(r"^\s{0,3}>\s?(.*)$")
_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
_LINK = re.compile(r"\[([^\]\n]+)\]\(((?:https?://|mailto:)[^\s()<>\"]+)\)")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1", re.S)
_ITALIC = re.compile(r"(?<![\w*])([*_])(?=\S)(.+?)(?<=\S)\1(?![\w*])", re.S)
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~", re.S)


def close_open_fence(text: str) -> str:
    """Close an unterminated code fence so half-streamed code does not swallow the rest."""
    fence = None
    for line in text.splitlines():
        m = _FENCE.match(line)
        if not m:
            continue
        if fence is None:
            fence = m.group(1)
        elif m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not m.group(2):
            fence = None
    return text + ("\n" + fence if fence else "")


def _inline(text: str) -> str:
    """Escape ``text`` and apply inline markup; code spans are protected from the rest."""
    spans: list[str] = []

    def _stash(m: re.Match[str]) -> str:
        spans.append(f"<code>{html.escape(m.group(2).strip())}</code>")
        return f"\x00{len(spans) - 1}\x00"

    out = html.escape(_CODE_SPAN.sub(_stash, text), quote=False)
    out = _LINK.sub(
        lambda m: f'<a href="{html.escape(m.group(2))}" target="_blank" rel="noopener">'
        f"{m.group(1)}</a>",
        out,
    )
    out = _BOLD.sub(r"<strong>\2</strong>", out)
    out = _ITALIC.sub(r"<em>\2</em>", out)
    out = _STRIKE.sub(r"<del>\1</del>", out)
    return re.sub("\x00(\\d+)\x00", lambda m: spans[int(m.group(1))], out)


def _cells(row: str) -> list[str]:
    row = row.strip()
    row = row[1:] if row.startswith("|") else row
    row = row[:-1] if row.endswith("|") else row
    return [c.strip() for c in row.split("|")]


def _table(lines: list[str]) -> str:
    head = "".join(f"<th>{_inline(c)}</th>" for c in _cells(lines[0]))
    body = "".join(
        "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in _cells(r)) + "</tr>" for r in lines[2:]
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _list(lines: list[str]) -> str:
    """Render list items; deeper indentation becomes a nested list (one tag per level)."""
    out: list[str] = []
    stack: list[tuple[int, str]] = []
    for line in lines:
        m = _UL.match(line) or _OL.match(line)
        if not m:  # continuation line of the previous item
            if out:
                out[-1] = out[-1][: -len("</li>")] + " " + _inline(line.strip()) + "</li>"
            continue
        indent = len(m.group(1))
        tag = "ul" if m.re is _UL else "ol"
        while stack and (indent < stack[-1][0] or (indent == stack[-1][0] and tag != stack[-1][1])):
            out.append(f"</{stack.pop()[1]}>")
        if not stack or indent > stack[-1][0]:
            stack.append((indent, tag))
            out.append(f"<{tag}>")
        out.append(f"<li>{_inline(m.group(m.lastindex or 2))}</li>")
    out.extend(f"</{tag}>" for _, tag in reversed(stack))
    return "".join(out)


def markdown_to_html(text: str) -> str:
    """Convert a Markdown string to safe HTML (unterminated fences are closed first)."""
    lines = close_open_fence(text).splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        if m := _FENCE.match(line):
            fence, lang = m.group(1), m.group(2)
            body: list[str] = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(fence):
                body.append(lines[i])
                i += 1
            cls = f' class="language-{html.escape(lang)}"' if lang else ""
            code = html.escape("\n".join(body).rstrip("\n"))
            out.append(f"<pre><code{cls}>{code}</code></pre>")
            i += 1
            continue
        if m := _HEADING.match(line):
            level = len(m.group(1))
            out.append(f"<h{level}>{_inline(m.group(2))}</h{level}>")
        elif _HR.match(line):
            out.append("<hr>")
        elif _QUOTE.match(line):
            quoted = []
            while i < len(lines) and (q := _QUOTE.match(lines[i])):
                quoted.append(q.group(1))
                i += 1
            out.append(f"<blockquote>{markdown_to_html(chr(10).join(quoted))}</blockquote>")
            continue
        elif "|" in line and i + 1 < len(lines) and _TABLE_SEP.match(lines[i + 1]):
            rows = [line, lines[i + 1]]
            i += 2
            while i < len(lines) and "|" in lines[i] and lines[i].strip():
                rows.append(lines[i])
                i += 1
            out.append(_table(rows))
            continue
        elif _UL.match(line) or _OL.match(line):
            items: list[str] = []
            while i < len(lines) and lines[i].strip() and not _FENCE.match(lines[i]):
                if items and not (_UL.match(lines[i]) or _OL.match(lines[i])) and (
                    _HEADING.match(lines[i]) or _QUOTE.match(lines[i])
                ):
                    break
                items.append(lines[i])
                i += 1
            out.append(_list(items))
            continue
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not _starts_block(lines, i):
                para.append(lines[i].strip())
                i += 1
            out.append(f"<p>{'<br>'.join(_inline(p) for p in para)}</p>")
            continue
        i += 1
    return "\n".join(out)


def _starts_block(lines: list[str], i: int) -> bool:
    line = lines[i]
    return bool(
        _FENCE.match(line)
        or _HEADING.match(line)
        or _HR.match(line)
        or _QUOTE.match(line)
        or _UL.match(line)
        or _OL.match(line)
        or ("|" in line and i + 1 < len(lines) and _TABLE_SEP.match(lines[i + 1]))
    )
