#!/usr/bin/env python3
"""Checks that docs/Diagnostics.md catalogues every diagnostic of lib/.

Finds each call that emits or builds a user-facing message in lib/**/*.cpp
(emitError, emitOpError, emitWarning, emitRemark, createStringError,
make_error, and the checkpoint library's wrappers fileError, tensorError,
fail and error), takes the string literals of the call and of the `<<`
chain that follows it, and checks that the message can be looked up in
docs/Diagnostics.md:

- a stable key such as `[SCALE-CONFLICT]` (or a key-like literal such as
  "Q-MISSING") must appear in the catalogue;
- otherwise the message's first distinctive fragment (the text between
  interpolated values, at least two words and 12 characters) must appear
  in the catalogue, whitespace-normalized.

Calls without such a fragment (messages forwarded from elsewhere, like
`emitError() << "kvq-import-checkpoint: " << toString(err)`) are skipped:
their text is checked where it is made. A false alarm is worse than a
missed message, so the check is deliberately simple.

    python3 scripts/check-diagnostics.py          # exit 1 on a gap
    python3 scripts/check-diagnostics.py --list   # print what is checked
"""

import argparse
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "docs" / "Diagnostics.md"
MESSAGE_FUNCS = ("emitError", "emitOpError", "emitWarning", "emitRemark",
                 "createStringError", "make_error", "fileError", "tensorError",
                 "fail", "error")
KEY_RE = re.compile(r"^\[?([A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+)\]?")
CALL_RE = re.compile(r"(?<!\w)(?:[\w:]*::)?(" + "|".join(MESSAGE_FUNCS) +
                     r")\s*(?:<[^<>;()]*>)?\s*\(")
# Interpolations inside a literal: formatv's {0}.
PLACEHOLDER_RE = re.compile(r"\{\d+(?:[:,][^}]*)?\}")
STRIP = " \t\n'\"`:;,.(["


def strip_comments(text):
    """Blanks out comments, keeping string/char literals and line numbers."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def statement_end(text, open_paren):
    """Index just after the call's `)` and, if a `<<` chain follows, after
    the chain (up to the `;` or `)` that ends the expression)."""
    depth, i, n = 0, open_paren, len(text)
    while i < n:
        c = text[i]
        if c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                i += 1
                break
        i += 1
    call_end = i
    rest = text[i:]
    if not re.match(r"\s*<<", rest):
        return call_end
    depth = 0
    while i < n:
        c = text[i]
        if c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                return i
            depth -= 1
        elif c == ";" and depth == 0:
            return i
        i += 1
    return i


def literals(code):
    """The string literals of `code`, adjacent ones joined, unescaped."""
    result, previous_end = [], None
    for m in re.finditer(r'"((?:[^"\\\n]|\\.)*)"', code):
        value = bytes(m.group(1), "utf-8").decode("unicode_escape")
        between = "x" if previous_end is None else code[previous_end:m.start()]
        if not between.strip():
            result[-1] += value
        else:
            result.append(value)
        previous_end = m.end()
    return result


def normalize(text):
    return " ".join(text.split())


def fragments(literal):
    for part in PLACEHOLDER_RE.split(literal):
        part = normalize(part).strip(STRIP)
        if part:
            yield part


def check_site(strings):
    """(kind, needle) to look up for one call site, or None to skip."""
    for s in strings:
        m = KEY_RE.match(s.strip())
        if m and (s.strip().startswith("[") or s.strip() == m.group(1)):
            return "key", m.group(1)
    for s in strings:
        for part in fragments(s):
            if len(part) >= 12 and " " in part:
                return "text", part
    return None


def sites():
    for path in sorted((ROOT / "lib").rglob("*.cpp")):
        text = strip_comments(path.read_text())
        for m in CALL_RE.finditer(text):
            open_paren = m.end() - 1
            end = statement_end(text, open_paren)
            strings = literals(text[open_paren:end])
            line = text.count("\n", 0, m.start()) + 1
            yield path.relative_to(ROOT), line, m.group(1), strings
        # Stable keys returned as plain strings (the scale rules' findings).
        for m in re.finditer(r'return\s+"([A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+)"\s*;',
                             text):
            line = text.count("\n", 0, m.start()) + 1
            yield path.relative_to(ROOT), line, "key", [m.group(1)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true",
                        help="print every call site and what is looked up")
    args = parser.parse_args()

    catalogue = normalize(CATALOGUE.read_text().replace("\\|", "|"))
    checked = skipped = 0
    missing = []
    for path, line, func, strings in sites():
        what = check_site(strings)
        if what is None:
            skipped += 1
            if args.list:
                print(f"{path}:{line}: {func}: skipped {strings}")
            continue
        checked += 1
        kind, needle = what
        found = needle in catalogue
        if args.list:
            print(f"{path}:{line}: {func}: {kind} {needle!r}"
                  f"{'' if found else '  MISSING'}")
        if not found:
            missing.append((path, line, kind, needle))

    for path, line, kind, needle in missing:
        print(f"{path}:{line}: {kind} {needle!r} is not in "
              f"{CATALOGUE.relative_to(ROOT)}", file=sys.stderr)
    print(f"check-diagnostics: {checked} messages checked, {skipped} call "
          f"sites without their own text skipped, {len(missing)} missing")
    if missing:
        print("check-diagnostics: add each to docs/Diagnostics.md (message, "
              "cause, fix, test)", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
