#!/usr/bin/env python3
"""Checks a fortunes page the way TechEmpower's verifier does.

    check_fortunes.py BODY_FILE [EXPECTED_FILE]

The body is normalised as TechEmpower's FortuneHTMLParser normalises it
(toolset/test_types/fortune/fortune_html_parser.py: tag names only, a line
break after <html>, <table>, </head> and every </tr>, whitespace-only text
dropped, <meta>/<link>/<thead>/<tbody> ignored, script contents ignored,
' " > in text and the usual numeric references folded to one spelling) and
compared with fortunes-expected-normalized.html. Exit status 0 when they are
equal; otherwise 1, with the first differing line printed.
"""

import os
import sys
from html.parser import HTMLParser

# Numeric references the verifier folds, by their lower-cased name.
CHARREFS = {}
for names, text in (
    (("34", "034", "x22"), "&quot;"),
    (("39", "039", "x27"), "&apos;"),
    (("43", "043", "x2b"), "+"),
    (("62", "062", "x3e"), "&gt;"),
    (("60", "060", "x3c"), "&lt;"),
    (("47", "047", "x2f"), "/"),
    (("40", "040", "x28"), "("),
    (("41", "041", "x29"), ")"),
):
    for name in names:
        CHARREFS[name] = text

IGNORED = {"meta", "link", "thead", "tbody"}


class Normaliser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=False)
        self.out = []
        self.in_script = False

    def handle_decl(self, decl):
        if decl.lower() == "doctype html":
            self.out.append("<!doctype html>")

    def handle_charref(self, name):
        self.out.append(CHARREFS.get(name.lower(), ""))

    def handle_entityref(self, name):
        self.out.append("—" if name == "mdash" else f"&{name};")

    def handle_starttag(self, tag, attrs):
        if tag in IGNORED:
            return
        if tag == "script":
            self.in_script = True
        self.out.append(f"<{tag}>")
        if tag in ("html", "table"):
            self.out.append("\n")

    def handle_endtag(self, tag):
        if tag in IGNORED:
            return
        if tag == "script":
            self.in_script = False
        self.out.append(f"</{tag}>")
        if tag in ("tr", "head"):
            self.out.append("\n")

    def handle_data(self, data):
        if self.in_script or not data.strip():
            return
        self.out.append(data.replace("'", "&apos;").replace('"', "&quot;").replace(">", "&gt;"))


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    expected_file = sys.argv[2] if len(sys.argv) == 3 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "fortunes-expected-normalized.html"
    )
    with open(sys.argv[1], encoding="utf-8", errors="replace") as body:
        parser = Normaliser()
        parser.feed(body.read())
        parser.close()
    got = "".join(parser.out).strip()
    with open(expected_file, encoding="utf-8") as expected_text:
        expected = expected_text.read().strip()
    if got == expected:
        return
    got_lines, expected_lines = got.splitlines(), expected.splitlines()
    for number, (line, want) in enumerate(zip(got_lines, expected_lines), start=1):
        if line != want:
            print(f"line {number} of the normalised page is {line[:120]!r}, expected {want[:120]!r}")
            sys.exit(1)
    print(f"the normalised page has {len(got_lines)} lines, expected {len(expected_lines)}")
    sys.exit(1)


if __name__ == "__main__":
    main()
