"""The core library stands alone: importing naq never loads the TUI or Textual."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap


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
