"""Mutation testing with mutmut, one module at a time, each against only its own tests.

Run through ``scripts/mutate`` (which provides the ``.venv-mutate`` environment). For each
module named in :data:`MODULES` it

1. copies the integration, the tests, the test harness (``tools/``) and ``pyproject.toml``
   to ``.dev/mutate/<module>/`` (the checkout is never touched; mutmut works in
   ``mutants/`` below that copy);
2. rewrites the copy of the module so that functions decorated with ``@callback`` or
   ``@property`` are decorated by assignment after their definition (``f = callback(f)``):
   mutmut leaves decorated functions alone, and in Home Assistant code that would leave out
   every event handler. Behaviour is the same: the decorator is applied to the same function;
3. writes mutmut's configuration (``setup.cfg``) with the module and its tests, and runs
   ``mutmut run`` (optionally on some functions only), then prints the survivors.

Usage: ``scripts/mutate [--jobs N] [--survivors] [MODULE[:FUNCTION_GLOB] ...]`` (no module:
all of them; names as in :data:`MODULES`, e.g. ``live`` for ``api/live.py``). ``--survivors``
runs only the last run's survivors again, against today's tests.
Figures and survivors land in ``.dev/mutate/<module>/figures.json``.
"""

# ruff: noqa: T201 - a command-line tool reports on stdout

from __future__ import annotations

import argparse
from dataclasses import dataclass
import json
import os
from pathlib import Path
import shutil
import subprocess
import sys
import time
from typing import Any

import libcst as cst

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".dev" / "mutate"
PACKAGE = "custom_components/saymon"
HOISTED = {"callback", "property"}
"""Decorators rewritten as assignments so mutmut mutates the functions they decorate."""


@dataclass(frozen=True)
class Module:
    """A module to mutate and the tests that cover it."""

    path: str
    tests: tuple[str, ...]
    deselect: tuple[str, ...] = ()


SLOW = (
    # Storms of 11,200 and 12,000 events: minutes per mutant; the rest covers the same code.
    "tests/integration/test_incident_truth.py::test_refresh_during_a_burst_keeps_every_sequence",
    "tests/integration/test_incident_truth.py::test_storm_of_12000_cleared_incidents_announces_each_once",
)

MODULES: dict[str, Module] = {
    "model": Module(
        f"{PACKAGE}/api/model.py",
        (
            "tests/unit/test_model.py",
            "tests/unit/test_model_memory.py",
            "tests/integration/test_incident_truth.py",
            "tests/integration/test_live.py",
            "tests/integration/test_guards.py",
        ),
        SLOW,
    ),
    "live": Module(
        f"{PACKAGE}/api/live.py",
        (
            "tests/integration/test_live.py",
            "tests/integration/test_hub_edges.py",
            "tests/integration/test_incident_truth.py",
            "tests/integration/test_guards.py",
            "tests/mirror/test_late_subscriber.py",
        ),
        SLOW,
    ),
    "hub": Module(
        f"{PACKAGE}/hub/hub.py",
        (
            "tests/integration/test_live.py",
            "tests/integration/test_hub_edges.py",
            "tests/integration/test_event_entity.py",
            "tests/integration/test_device_registry.py",
            "tests/integration/test_guards.py",
            "tests/mirror/test_late_subscriber.py",
        ),
    ),
    "hub_events": Module(
        f"{PACKAGE}/hub/events.py",
        (
            "tests/integration/test_event_entity.py",
            "tests/integration/test_guards.py",
            "tests/integration/test_logbook.py",
            "tests/integration/test_actions.py",
            "tests/integration/test_two_servers.py",
            # The diagnostics' count of fired events against what a subscriber received.
            "tests/mirror/test_mirror.py::test_storm_ends_with_the_true_retained_states",
        ),
    ),
    "signals": Module(
        f"{PACKAGE}/hub/signals.py",
        (
            "tests/integration/test_live.py",
            "tests/integration/test_hub_edges.py",
            "tests/integration/test_guards.py",
        ),
    ),
    "mirror": Module(
        f"{PACKAGE}/mqtt/mirror.py",
        (
            "tests/mirror/test_mirror.py",
            "tests/mirror/test_options.py",
            "tests/mirror/test_late_subscriber.py",
            "tests/mqtt_ha/test_ha_route.py",
            "tests/mqtt_ha/test_real_broker.py",
            "tests/unit/test_mirror_settings.py",
        ),
    ),
    "event": Module(
        f"{PACKAGE}/event.py",
        (
            "tests/integration/test_event_entity.py",
            "tests/integration/test_guards.py",
            "tests/integration/test_server_events.py",
        ),
    ),
    "device_trigger": Module(
        f"{PACKAGE}/device_trigger.py",
        (
            "tests/integration/test_actions.py",
            "tests/integration/test_guards.py",
            "tests/integration/test_server_events.py",
        ),
    ),
    "logbook": Module(
        f"{PACKAGE}/logbook.py",
        ("tests/integration/test_logbook.py", "tests/integration/test_logbook_server_events.py"),
    ),
    "services": Module(
        f"{PACKAGE}/services.py",
        (
            "tests/integration/test_actions.py",
            "tests/integration/test_rendered.py",
            "tests/integration/test_two_servers.py",
            "tests/integration/test_metrics_options.py",  # saymon.get_metric_history
        ),
    ),
    "operations_action": Module(
        f"{PACKAGE}/operations_action.py",
        ("tests/integration/test_run_operation.py", "tests/integration/test_rendered.py"),
    ),
}


class _Hoist(cst.CSTTransformer):
    """``@callback def f(...)`` becomes ``def f(...)`` followed by ``f = callback(f)``."""

    def _hoist(self, body: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
        out: list[cst.BaseStatement] = []
        for statement in body:
            decorators = (
                [d.decorator for d in statement.decorators]
                if isinstance(statement, cst.FunctionDef)
                else []
            )
            if (
                isinstance(statement, cst.FunctionDef)
                and decorators
                and all(isinstance(d, cst.Name) and d.value in HOISTED for d in decorators)
            ):
                out.append(statement.with_changes(decorators=[]))
                name = statement.name.value
                for decorator in reversed(decorators):  # the innermost applies first
                    wrapper = cst.ensure_type(decorator, cst.Name).value
                    out.append(cst.parse_statement(f"{name} = {wrapper}({name})"))
            else:
                out.append(statement)
        return out

    def leave_IndentedBlock(  # noqa: N802 - libcst's visitor naming
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        return updated_node.with_changes(body=self._hoist(list(updated_node.body)))

    def leave_Module(  # noqa: N802 - libcst's visitor naming
        self, original_node: cst.Module, updated_node: cst.Module
    ) -> cst.Module:
        return updated_node.with_changes(body=self._hoist(list(updated_node.body)))


def hoist_decorators(source: str) -> str:
    """The module's text with :data:`HOISTED` decorators applied by assignment."""
    return cst.parse_module(source).visit(_Hoist()).code


def prepare(name: str, module: Module, *, fresh: bool = True) -> Path:
    """A copy of the checkout for one module, with mutmut's configuration.

    ``fresh=False`` keeps the mutants and their results and only brings the tests (and the
    list of test files) up to date, for :func:`rerun`.
    """
    work = WORK / name
    ignore = shutil.ignore_patterns("__pycache__", "node_modules", "*.pyc")
    if fresh:
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        shutil.copytree(ROOT / "custom_components", work / "custom_components", ignore=ignore)
        shutil.copy2(ROOT / "pyproject.toml", work / "pyproject.toml")
        target = work / module.path
        target.write_text(hoist_decorators(target.read_text()))
    shutil.copytree(ROOT / "tests", work / "tests", ignore=ignore, dirs_exist_ok=True)
    # The test harness (simulator, Node server, Mosquitto); node_modules stays a symlink.
    tools = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "tools", work / "tools", ignore=tools, symlinks=True, dirs_exist_ok=True)
    tests = [t for t in module.tests if (work / t.split("::")[0]).exists()]
    args = ["-p", "no:cacheprovider", "-p", "no:randomly"]
    for node in module.deselect:
        args += ["--deselect", node]
    lines = [
        "[mutmut]",
        "source_paths =\n    custom_components",
        "also_copy =\n    tools",  # the test harness the tests import
        f"only_mutate =\n    {module.path}",
        "pytest_add_cli_args_test_selection =\n" + "".join(f"    {t}\n" for t in tests),
        "pytest_add_cli_args =\n" + "".join(f"    {a}\n" for a in args),
        # The wording of DEBUG lines is not behaviour: mutating it only adds survivors.
        "do_not_mutate_patterns =\n    _LOGGER\\.debug\\(",
        "use_git_change_detection = false",
        "timeout_multiplier = 4.0",
        "timeout_constant = 20.0",
    ]
    (work / "setup.cfg").write_text("\n".join(lines) + "\n")
    return work


def mutmut(work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run mutmut in ``work`` (output shown as it comes when not captured)."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "SAYMON_MUTATION": "1"}
    command = [str(Path(sys.executable).parent / "mutmut"), *args]
    return subprocess.run(command, cwd=work, env=env, text=True, check=False)  # noqa: S603


def summary(work: Path) -> dict[str, int]:
    """Mutants per status, read from mutmut's CI/CD export."""
    mutmut(work, "export-cicd-stats")
    stats_file = work / "mutants" / "mutmut-cicd-stats.json"
    data: dict[str, int] = json.loads(stats_file.read_text())
    return data


def not_killed(work: Path) -> dict[str, str]:
    """Mutant name -> status of every mutant that was not killed (``mutmut results``)."""
    command = [str(Path(sys.executable).parent / "mutmut"), "results"]
    output = subprocess.run(  # noqa: S603
        command, cwd=work, capture_output=True, text=True, check=True
    ).stdout
    found: dict[str, str] = {}
    for line in output.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if name:
            found[name] = status
    return found


def run(name: str, module: Module, functions: list[str], jobs: int) -> dict[str, Any]:
    """Mutate a module (or some of its functions) from scratch."""
    started = time.monotonic()
    work = prepare(name, module)
    dotted = module.path.removesuffix(".py").replace("/", ".")
    names = [f"{dotted}.{f}" for f in functions]
    mutmut(work, "run", "--max-children", str(jobs), *names)
    figures: dict[str, Any] = {**summary(work), "seconds": round(time.monotonic() - started)}
    figures["survivors"] = not_killed(work)
    if functions:
        figures["functions"] = functions
    (work / "figures.json").write_text(json.dumps(figures, indent=1))
    return figures


def rerun(name: str, module: Module, jobs: int) -> dict[str, Any]:
    """Run the last run's survivors again against today's tests and merge the figures.

    Tests are only ever added, so a mutant killed before is still killed; a changed list of
    test files makes mutmut forget its results, which is why the figures are merged here.
    """
    started = time.monotonic()
    work = WORK / name
    before: dict[str, Any] = json.loads((work / "figures.json").read_text())
    names = sorted(before["survivors"])
    if not names:
        return before
    prepare(name, module, fresh=False)
    mutmut(work, "run", "--max-children", str(jobs), *names)
    now = {key: status for key, status in not_killed(work).items() if key in names}
    killed_now = len(names) - len(now)
    figures = dict(before)
    figures["killed"] = before["killed"] + killed_now
    for status in {*before["survivors"].values(), *now.values()}:
        if status in figures:
            figures[status] = sum(1 for value in now.values() if value == status)
    figures["survivors"] = now
    figures["rerun_seconds"] = round(time.monotonic() - started)
    (work / "figures.json").write_text(json.dumps(figures, indent=1))
    return figures


def main() -> int:
    """Run each chosen module; print the figures and survivors."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", help="MODULE or MODULE:FUNCTION_GLOB")
    parser.add_argument("--jobs", type=int, default=1, help="parallel mutants (default 1)")
    parser.add_argument(
        "--survivors",
        action="store_true",
        help="run only the last run's survivors again, against today's tests",
    )
    options = parser.parse_args()
    chosen: dict[str, list[str]] = {}
    for target in options.targets or list(MODULES):
        name, _, functions = target.partition(":")
        if name not in MODULES:
            parser.error(f"unknown module {name!r}; one of {', '.join(MODULES)}")
        chosen.setdefault(name, [])
        if functions:
            chosen[name].append(functions)
    results: dict[str, dict[str, Any]] = {}
    for name, functions in chosen.items():
        module = MODULES[name]
        print(f"== {name}: {module.path}", flush=True)
        if options.survivors:
            figures = rerun(name, module, options.jobs)
        else:
            figures = run(name, module, functions, options.jobs)
        results[name] = figures
        print(f"== {name}: {json.dumps(figures)}", flush=True)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
