"""Host takes every target the CLI takes, and the TUI says so in F1, Host's placeholder and
tooltip, the status line and the empty-Host message.

The forms are checked against the one parser (dlmsdoctor/target_rules.py and targets.py): the
prefixes it tests a target with, the patterns it matches and the links it returns are read
from its source, and each must be met by a form of ``target_form.HOST_FORMS``. A form added to
the parser and not shown in the TUI fails here (the mutated sources below prove the check can
fail).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from textual.widgets import Input, Static

import dlmsdoctor.target_rules as target_rules
import dlmsdoctor.targets as targets
from dlmsdoctor.app import DoctorApp, create_app
from dlmsdoctor.screens.modals import HELP_TEXT
from dlmsdoctor.widgets.target_form import (
    HOST_FORMS,
    LINK_MEANINGS,
    SAVED_TARGET,
    SERIAL_FIELDS,
    TargetForm,
    cli_flag,
    host_forms_help,
    host_forms_line,
    host_placeholder,
)

# The one parser lives in two modules: target_rules.py (the forms: link_of, the patterns) and
# targets.py (options_for); read as one source.
SOURCE = "\n".join(Path(m.__file__).read_text(encoding="utf-8")  # type: ignore[arg-type]
                    for m in (target_rules, targets))


def _strings(node: ast.AST) -> set[str]:
    return {c.value for c in ast.walk(node) if isinstance(c, ast.Constant)
            and isinstance(c.value, str)}


def parser_forms(source: str) -> tuple[set[str], list[re.Pattern[str]], set[str], set[str]]:
    """What targets.py (``source``) recognises: the prefixes a target is tested with
    (``startswith``), the patterns compiled at module level, the links ``link_of`` returns or
    ``options_for`` sets, and the serial options ``options_for`` takes."""
    tree = ast.parse(source)
    prefixes: set[str] = set()
    patterns: list[re.Pattern[str]] = []
    links: set[str] = set()
    options: set[str] = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "startswith"):
            for arg in node.args:
                prefixes |= _strings(arg)
        elif isinstance(node, ast.keyword) and node.arg == "link":
            links |= _strings(node.value)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "Line" and node.args):  # target_rules: Line(link, ...)
            links |= _strings(node.args[0])
        elif isinstance(node, ast.FunctionDef) and node.name == "link_of":
            for ret in ast.walk(node):
                if isinstance(ret, ast.Return) and ret.value is not None:
                    links |= _strings(ret.value)
        elif isinstance(node, ast.FunctionDef) and node.name == "options_for":
            options |= {a.arg for a in node.args.kwonlyargs}
    for node in tree.body:
        value = node.value if isinstance(node, ast.Assign) else None
        if (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
                and value.func.attr == "compile"):
            patterns.append(eval(compile(ast.Expression(value), "targets.py", "eval"), {"re": re}))
    return prefixes, patterns, links, options


def _shown_links() -> set[str]:
    """The links of the forms the TUI shows, as the real parser gives them."""
    links = {targets.options_for(f.example).link for f in HOST_FORMS}
    serial = [f for f in HOST_FORMS if targets.link_of(f.example) == "serial"]
    links |= {targets.options_for(f.example, optical=True).link for f in serial}
    return links


def missing(source: str) -> list[str]:
    """What targets.py (``source``) takes that the TUI does not show (empty: all shown)."""
    prefixes, patterns, links, options = parser_forms(source)
    examples = [f.example for f in HOST_FORMS]
    gaps = [f"a target starting {p!r}" for p in sorted(prefixes)
            if not any(e.lower().startswith(p.lower()) for e in examples)]
    gaps += [f"a target matching {p.pattern!r}" for p in patterns
             if not any(p.fullmatch(e) for e in examples)]
    gaps += [f"the {link!r} link" for link in sorted(links - _shown_links())]
    gaps += [f"no words for the {link!r} link" for link in sorted(links - set(LINK_MEANINGS))]
    gaps += [f"the option {cli_flag(o)}" for o in sorted(options - dict(SERIAL_FIELDS).keys())]
    return gaps


def test_every_form_of_targets_py_is_shown() -> None:
    prefixes, patterns, links, options = parser_forms(SOURCE)
    # the scan sees what targets.py is known to hold (a rewrite of it must keep this test honest)
    assert {"/", "serial:", "rfc2217://"} <= prefixes and len(patterns) >= 2
    assert {"tcp", "serial", "rfc2217", "optical"} <= links
    assert options == {"baud", "serial_format", "optical"}
    assert missing(SOURCE) == []


def _add_to_link_of(statement: str, source: str = SOURCE) -> str:
    tree = ast.parse(source)
    link_of = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "link_of")
    link_of.body.insert(2, ast.parse(statement).body[0])  # after the docstring and the strip
    return ast.unparse(tree)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda: _add_to_link_of('if text.startswith("socket://"):\n    return "socket"'),
         ["a target starting 'socket://'", "the 'socket' link", "no words for the 'socket' link"]),
        (lambda: _add_to_link_of('if text.startswith("tcp://"):\n    return "tcp"'),
         ["a target starting 'tcp://'"]),
        (lambda: SOURCE + '\n_USB = re.compile(r"usb:\\d+")\n', ["a target matching 'usb:\\\\d+'"]),
        (lambda: SOURCE.replace("optical: bool = False", "optical: bool = False, "
                                "rs485: bool = False"), ["the option --rs485"]),
    ],
    ids=["new-link", "new-prefix", "new-pattern", "new-option"],
)
def test_a_form_added_to_targets_py_and_not_shown_fails(change, expected) -> None:  # type: ignore[no-untyped-def]
    assert missing(change()) == expected


def test_each_example_is_taken_by_the_parser_as_the_help_says() -> None:
    for form in HOST_FORMS:
        options = targets.options_for(form.example)  # raises on a form the CLI refuses
        assert options.link == targets.link_of(form.example)
    parsed = {f.shown: targets.options_for(f.example) for f in HOST_FORMS}
    assert parsed["host"].port == 4059  # the default port
    assert (parsed["[v6]:port"].host, parsed["[v6]:port"].port) == ("2001:db8::7", 4061)
    assert (parsed["host:port"].host, parsed["host:port"].port) == ("192.0.2.10", 4061)


def test_the_words_name_every_form_and_option() -> None:
    help_text = "\n".join(host_forms_help(2))
    line = host_forms_line()
    for form in HOST_FORMS:
        for text in (HELP_TEXT, help_text, line, host_placeholder()):
            assert form.shown in text, (form.shown, text)
    for option, label in SERIAL_FIELDS:
        assert cli_flag(option) in HELP_TEXT and label in HELP_TEXT and label in line
    assert SAVED_TARGET in HELP_TEXT and SAVED_TARGET in line
    assert max(len(row) for row in HELP_TEXT.splitlines()) <= 76  # the F1 box at 80 columns


async def test_the_tui_shows_them_and_takes_every_example(hermetic_dirs: Path) -> None:
    app: DoctorApp = create_app(start_screen="probe")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        host = screen.query_one("#host", Input)
        status = str(screen.query_one("#probe-status", Static).render())
        for form in HOST_FORMS:
            assert form.shown in host.placeholder and form.shown in str(host.tooltip)
            assert form.shown in status.replace("\n", " "), status
        # an empty Host says every form (as plain text: "[v6]" is no markup tag)
        await pilot.press("ctrl+r")
        await pilot.pause()
        said = [n for n in app._notifications if n.message.startswith("Host is empty")]
        assert said and not said[-1].markup
        assert all(form.shown in said[-1].message for form in HOST_FORMS)
        # every example goes through the form as the CLI takes it
        form_widget = screen.query_one(TargetForm)
        for form in HOST_FORMS:
            host.value = form.example
            await pilot.pause()
            values = form_widget.values()
            assert values.link == targets.link_of(form.example), form
        await pilot.press("f1")
        await pilot.pause()
        shown = str(app.screen.query_one("#help-text", Static).render())
        assert all(form.shown in shown for form in HOST_FORMS)
