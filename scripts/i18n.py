"""Extract translatable messages into each catalogue and report missing zh_CN entries.

Each domain package keeps its catalogue in ``memberplatform/<domain>/translations``
(messages from ``memberplatform/<domain>/`` and ``templates/<domain>/``); the rest
(auth, home, web, core, base templates) lives in ``memberplatform/translations``.
Flask-Babel merges them at run time. English is the source language; zh_CN is
the default UI language, so every message needs a zh_CN translation (a test
checks it).

Usage: python scripts/i18n.py              # update every catalogue
       python scripts/i18n.py points kits  # update only these ("core" for the shared one)
       python scripts/i18n.py --check      # only list missing translations, exit 1 if any
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS
from babel.messages.extract import extract as babel_extract
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "memberplatform"
TEMPLATES = ROOT / "templates"
# Folder "zh": Babel parses zh_CN as zh_Hans_CN, which gettext expands to "zh".
LOCALE = "zh"
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None, "lazy_ngettext": (1, 2)}
CORE_DIRS = {"auth", "home", "web", "core", "audit", "security", "translations", "__pycache__"}


def domain_names() -> list[str]:
    return sorted(
        p.name
        for p in PACKAGE.iterdir()
        if p.is_dir() and p.name not in CORE_DIRS and (p / "__init__.py").exists()
    )


def sources() -> dict[Path, list[Path]]:
    """Catalogue folder -> files whose messages it holds."""
    domains = domain_names()
    plan: dict[Path, list[Path]] = {PACKAGE / "translations": []}
    for name in domains:
        files = sorted((PACKAGE / name).rglob("*.py")) + sorted((TEMPLATES / name).rglob("*.html"))
        plan[PACKAGE / name / "translations"] = files
    core = plan[PACKAGE / "translations"]
    core += sorted(PACKAGE.glob("*.py"))
    for name in sorted(CORE_DIRS - {"translations", "__pycache__"}):
        core += sorted((PACKAGE / name).rglob("*.py"))
    core += sorted(TEMPLATES.glob("*.html"))
    for folder in sorted(p for p in TEMPLATES.iterdir() if p.is_dir()):
        if folder.name not in domains:
            core += sorted(folder.rglob("*.html"))
    return plan


def extract(files: list[Path]) -> Catalog:
    catalog = Catalog(locale=LOCALE, project="memberplatform")
    for path in files:
        method = "python" if path.suffix == ".py" else "jinja2.ext:babel_extract"
        options = {} if path.suffix == ".py" else {"extensions": "", "trimmed": "true"}
        with path.open("rb") as handle:
            for lineno, message, comments, context in babel_extract(
                method, handle, keywords=KEYWORDS, options=options, strip_comment_tags=True
            ):
                catalog.add(
                    message,
                    locations=[(str(path.relative_to(ROOT)), lineno)],
                    auto_comments=comments,
                    context=context,
                )
    return catalog


def po_path(folder: Path) -> Path:
    return folder / LOCALE / "LC_MESSAGES" / "messages.po"


def update(only: list[str] | None = None) -> None:
    for folder, files in sources().items():
        name = "core" if folder == PACKAGE / "translations" else folder.parent.name
        if only and name not in only:
            continue
        template = extract(files)
        path = po_path(folder)
        if path.exists():
            with path.open("rb") as handle:
                catalog = read_po(handle, locale=LOCALE)
            catalog.update(template, no_fuzzy_matching=True)
        else:
            if not len(template):
                continue
            catalog = Catalog(locale=LOCALE, project="memberplatform")
            catalog.update(template, no_fuzzy_matching=True)
        catalog.fuzzy = False  # the header: compiled catalogues must not be skipped
        catalog.header_comment = "# zh_CN messages of memberplatform (source language: English)."
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            write_po(handle, catalog, width=100, omit_header=False, ignore_obsolete=True)


def missing() -> list[str]:
    """Messages in the code that have no zh_CN translation in their catalogue."""
    problems = []
    for folder, files in sources().items():
        template = extract(files)
        path = po_path(folder)
        translated: dict = {}
        if path.exists():
            with path.open("rb") as handle:
                catalog = read_po(handle, locale=LOCALE)
            translated = {
                m.id: m.string for m in catalog if m.id and not m.fuzzy and _complete(m.string)
            }
        for message in template:
            if message.id and message.id not in translated:
                where = message.locations[0] if message.locations else ("?", 0)
                problems.append(f"{where[0]}:{where[1]}: {message.id!r}")
    return problems


def _complete(string) -> bool:
    if isinstance(string, tuple | list):
        return all(string)
    return bool(string)


if __name__ == "__main__":
    if "--check" in sys.argv:
        gaps = missing()
        print("\n".join(gaps) or "every message is translated")
        sys.exit(1 if gaps else 0)
    update([arg for arg in sys.argv[1:] if not arg.startswith("-")] or None)
    print("\n".join(missing()) or "every message is translated")
