"""Under ``NAQ_JOB_SERIALIZER=pickle`` functions travel by value: a lambda, a closure and a function
of a script's ``__main__`` run on a worker that never imported them. ``allowed_modules`` still
holds: a by-value function counts as from the module it was defined in, and unpickling imports
no module outside the list. Under the default JSON serializer they are refused at enqueue, with
the way out in the message, and a worker that did not opt in never opens a pickled job."""

from __future__ import annotations

import asyncio
import importlib
import os
import pickle
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import naq
from naq import Queue
from naq.models import decode_envelope
from tests.helpers import REPO_ROOT, read_dead_letters, running_worker

pytestmark = [
    pytest.mark.usefixtures("nats_url"),
    pytest.mark.filterwarnings("ignore:naq is using the pickle serializer"),
]

Q = "by-value"


@pytest.fixture
def pickled(monkeypatch: pytest.MonkeyPatch) -> naq.Settings:
    """Producer and worker opted in to pickle (the environment says so too, for readers)."""
    monkeypatch.setenv("NAQ_JOB_SERIALIZER", "pickle")
    monkeypatch.delenv("NAQ_ALLOWED_MODULES", raising=False)
    return naq.Settings.from_env()


def value_of(thing: Any) -> Any:
    """A job reading an argument's attribute (the argument's class travels by reference)."""
    return thing.value


class _TouchesWhenUnpickled:
    """Unpickling this creates ``path``: shows whether a payload was opened at all."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.path,))


class _Greeter:
    def __init__(self, name: str) -> None:
        self.name = name

    def greet(self, greeting: str) -> str:
        return f"{greeting}, {self.name}"


def _main_function(source: str, name: str) -> Callable[..., Any]:
    """A function defined in a module named ``__main__``, as a script's functions are."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(source, namespace)  # noqa: S102 - fixed source
    return namespace[name]  # type: ignore[no-any-return]


# -- by value -------------------------------------------------------------------------------------


async def test_a_lambda_a_closure_and_a_bound_method_run_on_a_worker(
    pickled: naq.Settings,
) -> None:
    factor = 3

    def times(x: int) -> int:
        return x * factor

    async with Queue(Q, settings=pickled) as queue, running_worker(Q, settings=pickled):
        added = await queue.enqueue(lambda x, y: x + y, 2, 5)
        multiplied = await queue.enqueue(times, 4)
        greeted = await queue.enqueue(_Greeter("pickle").greet, "hello")
        assert await added.result(timeout=10) == 7
        assert await multiplied.result(timeout=10) == 12
        assert await greeted.result(timeout=10) == "hello, pickle"
        infos = [await naq.get_job(job.job_id) for job in (added, multiplied, greeted)]
    here = f"{__name__}:test_a_lambda_a_closure_and_a_bound_method_run_on_a_worker.<locals>"
    # Listings show where each function was defined.
    assert [info.function for info in infos] == [
        f"{here}.<lambda>",
        f"{here}.times",
        f"{__name__}:_Greeter.greet",
    ]


SCRIPT = """\
import sys

import naq

OFFSET = 100


def double(x):
    return 2 * x


def work(x):
    return {"value": double(x) + OFFSET, "module": __name__}


if __name__ == "__main__":
    job = naq.enqueue_sync(work, 21, queue_name=sys.argv[1])
    print(job.job_id)
"""


async def test_a_scripts_main_function_runs_on_a_worker_that_never_imported_it(
    pickled: naq.Settings, tmp_path: Path
) -> None:
    """``python script.py`` enqueues a function of its ``__main__`` (which calls another and
    reads a global of the script); a worker in this process, which never imported the script,
    runs it."""
    script_dir = tmp_path / "scripts"
    script_dir.mkdir()
    script = script_dir / f"naq_script_{uuid.uuid4().hex[:8]}.py"
    script.write_text(SCRIPT)
    # This checkout's naq, wherever the script runs from.
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        Q,
        cwd=script_dir,
        env=dict(os.environ, PYTHONPATH=path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    job_id = out.decode().strip()

    assert script.stem not in sys.modules
    async with running_worker(Q, settings=pickled):
        info = await naq.wait_for_job(job_id, timeout=10)
    assert info.status == naq.JobStatus.COMPLETED, info
    assert await naq.fetch_job_result(job_id) == {"value": 142, "module": "__main__"}
    assert info.function == "__main__:work"
    assert script.stem not in sys.modules and not hasattr(sys.modules["__main__"], "work")


# -- allowed modules ------------------------------------------------------------------------------


async def test_allowed_modules_hold_for_functions_sent_by_value(
    nats_url: str, pickled: naq.Settings, tmp_path: Path
) -> None:
    """A worker with ``allowed_modules=["tests"]`` runs a lambda defined in a test module, and
    refuses a ``__main__`` function before unpickling anything (the gadget beside it never
    fires)."""
    marker = tmp_path / "unpickled"
    main_work = _main_function("def work(x, _):\n    return x\n", "work")
    async with (
        Queue(Q, settings=pickled) as queue,
        running_worker(Q, settings=pickled, allowed_modules=["tests"]),
    ):
        refused = await queue.enqueue(main_work, 1, _TouchesWhenUnpickled(marker))
        allowed = await queue.enqueue(lambda: "ran")
        assert await allowed.result(timeout=10) == "ran"
        with pytest.raises(naq.JobExecutionError) as caught:
            await refused.result(timeout=10)
    assert "'__main__'" in (caught.value.error or "")
    assert not marker.exists(), "the refused job was unpickled"
    (letter,) = await read_dead_letters(nats_url, Q)
    assert letter.job_id == refused.job_id
    assert "__main__" in letter.reason and "allowed_modules" in letter.reason
    assert "refused before unpickling" in letter.reason
    # Control: the very payload refused does run code when unpickled.
    pickle.loads(decode_envelope(letter.payload).pickled or b"")  # noqa: S301
    assert marker.exists()


async def test_unpickling_imports_no_module_outside_allowed_modules(
    pickled: naq.Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An argument whose class lives in a module the worker hasn't loaded: refused before that
    import where the module isn't allowed; imported and run where it is."""
    name = f"naq_unloaded_{uuid.uuid4().hex[:8]}"
    marker = tmp_path / "imported"
    (tmp_path / f"{name}.py").write_text(
        "from pathlib import Path\n\n"
        f"Path({str(marker)!r}).write_text('imported')\n\n\n"
        "class Thing:\n"
        "    def __init__(self, value):\n"
        "        self.value = value\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    thing = importlib.import_module(name).Thing(5)
    control = Q + "-control"
    async with Queue(Q, settings=pickled) as queue, Queue(control, settings=pickled) as other:
        refused = await queue.enqueue(value_of, thing)
        imported = await other.enqueue(value_of, thing)
    # The worker has not loaded it: only the payload could make it import the module.
    del sys.modules[name]
    marker.unlink()

    async with running_worker(Q, settings=pickled, allowed_modules=["tests"]):
        with pytest.raises(naq.JobExecutionError) as caught:
            await refused.result(timeout=10)
    assert name in (caught.value.error or "") and "allowed_modules" in (caught.value.error or "")
    assert not marker.exists() and name not in sys.modules
    async with running_worker(control, settings=pickled, allowed_modules=["tests", name]):
        assert await imported.result(timeout=10) == 5
    assert marker.exists()


# -- json, the default ----------------------------------------------------------------------------


def _bound_method() -> Callable[..., Any]:
    return _Greeter("json").greet


@pytest.mark.parametrize(
    ("make", "named"),
    [
        (lambda: lambda x: x, "lambda"),
        (lambda: _main_function("def work():\n    pass\n", "work"), "__main__"),
        (_bound_method, "bound to an instance"),
    ],
)
def test_json_refuses_functions_without_a_name_and_says_how_to_send_them(
    make: Callable[[], Callable[..., Any]], named: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NAQ_JOB_SERIALIZER", raising=False)
    with pytest.raises(naq.SerializationError) as caught:
        naq.Job(make())
    message = str(caught.value)
    assert named in message and "NAQ_JOB_SERIALIZER=pickle" in message


async def test_json_enqueue_refuses_a_lambda_and_a_json_worker_never_opens_a_pickled_one(
    nats_url: str, pickled: naq.Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NAQ_JOB_SERIALIZER")
    json_only = naq.Settings.from_env()
    async with Queue(Q, settings=json_only) as queue:
        with pytest.raises(naq.SerializationError, match="NAQ_JOB_SERIALIZER=pickle"):
            await queue.enqueue(lambda x: x + 1, 1)
        assert await queue.purge() == 0
    async with (
        Queue(Q, settings=pickled) as producer,
        running_worker(Q, settings=json_only),
    ):
        job = await producer.enqueue(lambda: "ran")
        with pytest.raises(naq.JobExecutionError, match="pickle"):
            await job.result(timeout=10)
    (letter,) = await read_dead_letters(nats_url, Q)
    assert letter.job_id == job.job_id and "pickled payload refused" in letter.reason
