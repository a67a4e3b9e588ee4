"""A forgiving lexer for structured header values (``Authentication-Results``, ``Received``).

RFC 5322 structured values mix words, quoted strings, nested comments and ``;`` separators.
Real headers are damaged (unterminated comments, missing spaces), and they are written by
whoever sent the message, so the lexer never raises: damage becomes a token plus a defect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dsguard.headers.text import unfold

__all__ = ["Token", "tokenize", "unfold"]

TokenKind = Literal["word", "comment", "sep"]


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str
    quoted: bool = False  # a word that was (partly) a quoted string


def tokenize(value: str, defects: list[str] | None = None) -> list[Token]:
    """Split ``value`` into words, comments (text without the parentheses) and ``;``.

    A quoted string is glued to the word it touches (``reason="a b"`` is one word ``reason=a b``).
    Unterminated comments and quotes run to the end of the value and are reported in
    ``defects``.
    """
    tokens: list[Token] = []
    word: list[str] = []
    quoted = False
    i, n = 0, len(value)

    def flush() -> None:
        nonlocal quoted
        if word:
            tokens.append(Token("word", "".join(word), quoted))
            word.clear()
        quoted = False

    while i < n:
        ch = value[i]
        if ch == "(":
            flush()
            depth, j, buf = 1, i + 1, []
            while j < n and depth:
                c = value[j]
                if c == "\\" and j + 1 < n:
                    buf.append(value[j + 1])
                    j += 2
                    continue
                if c == "(":
                    depth += 1
                elif c == ")":
                    depth -= 1
                    if depth == 0:
                        break
                buf.append(c)
                j += 1
            if depth and defects is not None:
                defects.append("unterminated comment")
            tokens.append(Token("comment", "".join(buf).strip()))
            i = j + 1
        elif ch == '"':
            j, buf = i + 1, []
            while j < n and value[j] != '"':
                if value[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(value[j])
                j += 1
            if j >= n and defects is not None:
                defects.append("unterminated quoted string")
            word.extend(buf)
            quoted = True
            i = j + 1
        elif ch == ";":
            flush()
            tokens.append(Token("sep", ";"))
            i += 1
        elif ch.isspace():
            flush()
            i += 1
        else:
            word.append(ch)
            i += 1
    flush()
    return _join_equals(tokens)


def _join_equals(tokens: list[Token]) -> list[Token]:
    """Glue ``key = value`` written with spaces back into ``key=value``."""
    out: list[Token] = []
    for tok in tokens:
        if (
            tok.kind == "word"
            and out
            and out[-1].kind == "word"
            and not out[-1].quoted
            and (
                (out[-1].text.endswith("=") and "=" not in tok.text)
                or (tok.text.startswith("=") and "=" not in out[-1].text)
            )
        ):
            prev = out.pop()
            out.append(Token("word", prev.text + tok.text, tok.quoted))
        else:
            out.append(tok)
    return out
