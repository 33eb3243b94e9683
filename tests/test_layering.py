"""The packages depend one way (DESIGN.md): dataset_builders < training < projection < model_cards < xner.

The import-linter contract in setup.cfg states the order; a package also never reaches into another
package's private (underscore) names, which import-linter cannot see, so an AST scan checks that.
"""

import ast
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("dataset_builders", "training", "projection", "model_cards", "xner")


def test_import_contract_holds():
    pytest.importorskip("importlinter", reason="the test extra installs import-linter")
    lint = pathlib.Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint), "--config", str(REPO / "setup.cfg")],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]


def private_imports_across_packages() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
                    continue
                top = node.module.split(".")[0]
                private_module = any(part.startswith("_") for part in node.module.split(".")[1:])
                if top in PACKAGES and top != package:
                    names = [a.name for a in node.names if a.name.startswith("_")]
                    if private_module or names:
                        found.append(f"{path.relative_to(REPO)}:{node.lineno} {node.module} {names}")
    return found


def test_no_private_names_across_packages():
    assert private_imports_across_packages() == []


def test_the_scan_sees_a_private_import(tmp_path, monkeypatch):
    # The scan must be able to fail: a planted private import is reported.
    fake = tmp_path / "xner"
    fake.mkdir()
    (fake / "m.py").write_text("from training.loop import _Run\n")
    for package in PACKAGES:
        if package != "xner":
            (tmp_path / package).mkdir()
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    assert private_imports_across_packages() == ["xner/m.py:1 training.loop ['_Run']"]
