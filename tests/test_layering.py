"""The layers stand apart: importing naq never loads the TUI or Textual, and only
naq.transport uses nats-py."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import naq


def test_import_naq_does_not_import_textual_or_the_tui() -> None:
    code = textwrap.dedent(
        """
        import json, sys
        import naq
        loaded = sorted(
            name for name in sys.modules
            if name.split(".")[0] in {"textual", "naq_tui"}
        )
        print(json.dumps(loaded))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_tui_imports_without_a_server() -> None:
    # The other direction is allowed: naq_tui builds on naq (and on nothing that needs NATS up).
    code = "import naq_tui.app, naq_tui.fake; print('ok')"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "ok"


NAQ = Path(naq.__file__).resolve().parent
TRANSPORT = NAQ / "transport"
#: Attributes that are nats-py's client and JetStream context on a connection.
NATS_HANDLES = {"nc", "js"}


def above_the_transport() -> list[Path]:
    """Every module of naq and naq_tui outside naq/transport/."""
    paths = sorted(NAQ.rglob("*.py")) + sorted((NAQ.parent / "naq_tui").rglob("*.py"))
    return [path for path in paths if TRANSPORT not in path.parents]


def nats_uses(path: Path) -> list[str]:
    """Where ``path`` imports nats-py or reaches a connection's nats-py handles."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            modules = [node.module or ""]
        found += [
            f"{path.name}:{node.lineno} imports {module}"
            for module in modules
            if module == "nats" or module.startswith("nats.")
        ]
        if isinstance(node, ast.Attribute) and node.attr in NATS_HANDLES:
            found.append(f"{path.name}:{node.lineno} uses .{node.attr}")
    return found


def test_only_the_transport_uses_nats_py() -> None:
    modules = above_the_transport()
    assert NAQ / "broker.py" in modules and NAQ / "worker" / "loop.py" in modules
    offenders = [use for path in modules for use in nats_uses(path)]
    assert offenders == []


def test_the_check_sees_what_it_looks_for(tmp_path: Path) -> None:
    module = tmp_path / "reaching.py"
    module.write_text(
        "import nats.errors\n\nasync def f(broker):\n    await broker.connection.js.x()\n"
    )
    assert nats_uses(module) == ["reaching.py:1 imports nats.errors", "reaching.py:4 uses .js"]


def test_naq_connection_is_the_public_face_of_the_transport_connection() -> None:
    import naq.connection
    import naq.transport.connection

    for name in naq.connection.__all__:
        assert getattr(naq.connection, name) is getattr(naq.transport, name), name
    assert naq.connection.connect is naq.connect is naq.transport.connection.connect
