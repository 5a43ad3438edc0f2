"""The project's shape holds: imports go one way, every stage's dvc.yaml deps cover the code it runs,
params.yaml equals the typed defaults outside its profile, and only the layout spells output paths."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.layers import ROOT, closure, code_deps, imported_modules

CODE_DIRS = ("tokenclean", "tasks", "flows", "bench")


def files(folder: str) -> list:
    return sorted(p for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)


def top_imports(path) -> set[str]:
    return {m.split(".")[0] for m in imported_modules(path)}


def stages() -> dict[str, dict]:
    """Each dvc.yaml stage (a foreach stage by its template) with the module its command runs."""
    out = {}
    for name, stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items():
        body = stage.get("do", stage)
        out[name] = {**body, "module": re.search(r"python -m (tasks\.\w+)", body["cmd"]).group(1)}
    return out


@pytest.mark.parametrize("name", list(stages()))
def test_stage_deps_are_exactly_the_code_its_command_imports(name):
    stage = stages()[name]
    task = ROOT.joinpath(*stage["module"].split(".")).with_suffix(".py")
    listed = {d for d in stage["deps"] if d.startswith(("tokenclean", "tasks"))}
    assert listed == set(code_deps(task)), (
        f"dvc.yaml stage '{name}': deps should list exactly {code_deps(task)} (python -m tests.layers prints them)")


def _paths(entries) -> set[str]:
    return {e if isinstance(e, str) else next(iter(e)) for e in entries or []}


@pytest.mark.parametrize("name", list(stages()))
def test_the_layout_knows_every_output_of_a_stage(name):
    """What a stage restores on failure (tokenclean.stage.all_or_nothing) is what DVC tracks."""
    from tokenclean.layout import stage_outputs

    stage = stages()[name]
    declared = {p.replace("${key}", "r9") for key in ("outs", "metrics", "plots") for p in _paths(stage.get(key))}
    assert {str(p) for p in stage_outputs(name, "r9")} == declared


def test_a_stage_runs_the_module_named_after_it():
    for name, stage in stages().items():
        assert stage["module"] == f"tasks.{name}", name


@pytest.mark.parametrize("path", files("tokenclean"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_library_imports_no_orchestration(path):
    found = top_imports(path) & {"prefect", "dvc", "tasks", "flows", "bench", "tests"}
    if path.is_relative_to(ROOT / "tokenclean" / "cli"):
        found -= {"dvc"}  # the command line reads past revisions and experiments through dvc.api
    assert not found, f"{path.relative_to(ROOT)} imports {sorted(found)}"


@pytest.mark.parametrize("path", files("tasks"), ids=lambda p: str(p.relative_to(ROOT)))
def test_a_task_imports_only_the_library(path):
    found = top_imports(path) & {"prefect", "dvc", "tasks", "flows", "bench", "tests"}
    assert not found, f"{path.relative_to(ROOT)} imports {sorted(found)}: tasks import only tokenclean"


@pytest.mark.parametrize("folder, banned", [("flows", {"tasks", "bench", "tests"}),
                                            ("bench", {"tasks", "flows", "tests"})])
def test_flows_and_bench_do_not_reach_into_tasks(folder, banned):
    for path in files(folder):
        assert not top_imports(path) & banned, f"{path.relative_to(ROOT)} imports {sorted(top_imports(path) & banned)}"


def test_the_closure_follows_imports_inside_functions():
    evaluate = closure(ROOT / "tasks" / "evaluate.py")
    assert ROOT / "tokenclean" / "evaluation" / "lmeval.py" in evaluate  # imported lazily, inside a function
    assert ROOT / "tokenclean" / "evaluation" / "__init__.py" in evaluate


def test_only_tokenclean_is_installed():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["tool"]["setuptools"]["packages"]["find"]["include"] == ["tokenclean*"]
    assert project["project"]["scripts"] == {"tokenclean": "tokenclean.cli.main:main"}


def test_params_file_equals_the_typed_defaults_outside_its_profile():
    from tokenclean.config import Params
    from tokenclean.params_file import parse_params

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert "profile" in raw, "params.yaml keeps the offline default's settings in one section, profile"
    assert parse_params({k: v for k, v in raw.items() if k != "profile"}) == Params()


def test_the_profile_fills_in_only_what_the_sections_leave_unset():
    from tokenclean.params_file import parse_params

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    p = parse_params(raw)
    assert (p.train.method, p.train.epochs, p.round_train("warmup").epochs) == ("full", 3, 20)
    assert parse_params({**raw, "train": {**raw["train"], "epochs": 2}}).train.epochs == 2  # an explicit key wins
    assert parse_params({**raw, "profile": {}}).train.method == "lora"  # no profile: the real-model defaults


def string_literals(path) -> list[str]:
    """String constants of a file, docstrings left out."""
    tree = ast.parse(path.read_text())
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef)) and n.body
            and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in docs]


def test_only_the_layout_spells_an_output_path():
    spelt = re.compile(r"^(out|reports)(/|$)")
    for folder in CODE_DIRS:
        for path in files(folder):
            if path != ROOT / "tokenclean" / "layout.py":
                found = [s for s in string_literals(path) if spelt.match(s)]
                assert not found, f"{path.relative_to(ROOT)} spells {found}: ask tokenclean/layout.py"


def test_ruff_finds_nothing():
    import shutil
    import subprocess
    import sys

    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    done = subprocess.run([ruff, "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]
