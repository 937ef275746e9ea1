"""Each contract has one home, and the places that use it agree with it.

- the train and evaluate rules declare exactly the outputs their library paths objects hold, at
  the paths of the results layout;
- the rules that read another rule's output take it from that rule;
- benchmarks import nothing from tests/.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from dfdetect.data.landmarks.files import LandmarkPaths
from dfdetect.data.store import StorePaths
from dfdetect.evaluation.evaluate import EvaluationPaths, SetEvaluationPaths
from dfdetect.layout import EVALUATION_FILES, LANDMARK_FILES, STORE_FILES, TRAIN_FILES, ResultsLayout
from dfdetect.training.train import TrainPaths

ROOT = Path(__file__).resolve().parents[1]


def _strip_constraints(pattern: str) -> str:
    return re.sub(r"\{(\w+),[^}]*\}", r"{\1}", pattern)


@pytest.fixture(scope="module")
def workflow_rules(tmp_path_factory):
    """The parsed workflow (Snakemake's API, no job run) for a config with one model."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings, StorageSettings

    workdir = tmp_path_factory.mktemp("contracts")
    config = workdir / "config.yaml"
    config.write_text(yaml.safe_dump({"results_dir": "res", "models": {"m": {"arch": "cnn"}}}))
    with SnakemakeApi(OutputSettings()) as api:
        workflow = api.workflow(
            resource_settings=ResourceSettings(),
            config_settings=ConfigSettings(configfiles=[config]),
            storage_settings=StorageSettings(),
            snakefile=ROOT / "Snakefile",
            workdir=workdir,
        )
        yield {rule.name: rule for rule in workflow._workflow.rules}


def declared_outputs(rule) -> dict[str, str]:
    return {name: _strip_constraints(str(path)) for name, path in rule.output.items()}


@pytest.mark.parametrize(
    ("rule", "paths_class", "files", "folder", "name"),
    [
        ("train", TrainPaths, TRAIN_FILES, "model_dir", "{model}"),
        ("evaluate", EvaluationPaths, EVALUATION_FILES, "eval_dir", "{model}"),
        ("ensemble", EvaluationPaths, EVALUATION_FILES, "eval_dir", "{ensemble}"),
    ],
)
def test_rule_outputs_are_what_the_library_writes(workflow_rules, rule, paths_class, files, folder, name):
    outputs = declared_outputs(workflow_rules[rule])
    fields = [field.name for field in dataclasses.fields(paths_class)]
    assert fields == list(files)
    # the evaluate rule also writes the calibration, next to the model (its script passes it on its own)
    extra = {"calibration": ResultsLayout("res").calibration_file("{model}", "{run}")} if rule == "evaluate" else {}
    assert list(outputs) == fields + list(extra)
    in_folder = paths_class.in_folder(getattr(ResultsLayout("res"), folder)(name, "{run}"))
    assert {name: str(path) for name, path in dataclasses.asdict(in_folder).items()} | extra == outputs
    assert paths_class.from_mapping(outputs) == in_folder


def test_report_rule_outputs_are_what_the_report_writes(workflow_rules):
    from dfdetect.evaluation.report import ReportPaths
    from dfdetect.layout import REPORT_FILES

    outputs = declared_outputs(workflow_rules["report"])
    assert list(outputs) == [field.name for field in dataclasses.fields(ReportPaths)] == list(REPORT_FILES)
    in_folder = ReportPaths.in_folder(Path(ResultsLayout("res").report_file("x")).parent)
    assert {name: str(path) for name, path in dataclasses.asdict(in_folder).items()} == outputs
    scoring = [_strip_constraints(str(path)) for path in workflow_rules["scoring"].output]
    assert scoring == [ResultsLayout("res").scoring_file("{model}", "{run}")]  # beside the model, where predict looks


@pytest.mark.parametrize(("rule", "name"), [("evaluate_set", "{model}"), ("ensemble_set", "{ensemble}")])
def test_set_rule_outputs_are_what_the_library_writes(workflow_rules, rule, name):
    outputs = declared_outputs(workflow_rules[rule])
    assert list(outputs) == [field.name for field in dataclasses.fields(SetEvaluationPaths)]
    layout = ResultsLayout("res")
    assert outputs == {output: layout.set_eval_file(name, "{set}", output, "{run}") for output in outputs}


def test_runs_live_where_the_layout_says_and_robustness_scores_run_0(workflow_rules):
    layout = ResultsLayout("res")
    assert layout.train_file("m", "model", layout.run_part(0)) == "res/models/m/model.keras"
    assert layout.train_file("m", "model", layout.run_part(2)) == "res/models/m/runs/2/model.keras"
    assert layout.calibration_file("m", layout.run_part(1)) == "res/models/m/runs/1/calibration.json"
    assert layout.eval_file("m", "metrics", layout.run_part(1)) == "res/eval/m/runs/1/metrics.json"
    assert [layout.run_number(layout.run_part(run)) for run in range(3)] == [0, 1, 2]
    assert str(workflow_rules["robustness"].input.model) == layout.train_file("{model}", "model")


@pytest.mark.parametrize(
    ("rule", "paths_class", "suffixes", "data"),
    [("pack", StorePaths, STORE_FILES, "{data}"), ("landmarks", LandmarkPaths, LANDMARK_FILES, "")],
)
def test_store_rule_outputs_are_what_the_library_opens(workflow_rules, rule, paths_class, suffixes, data):
    outputs = declared_outputs(workflow_rules[rule])
    assert list(outputs) == [field.name for field in dataclasses.fields(paths_class)] == list(suffixes)
    prefix = ResultsLayout("res").store_prefix("{batch}", data)
    assert {name: str(path) for name, path in dataclasses.asdict(paths_class.for_prefix(prefix)).items()} == outputs
    # the consumers' flat input lists group back into one paths object per batch
    files = [path.format(batch=batch, data="") for batch in ("0-0", "1-0") for path in outputs.values()]
    grouped = paths_class.group(files)
    assert [paths.batch for paths in grouped] == ["0-0", "1-0"]
    with pytest.raises(ValueError, match="no path for"):
        paths_class.group(files[1:])


def test_a_missing_output_fails_before_the_job_runs():
    outputs = {name: f"x/{file}" for name, file in TRAIN_FILES.items() if name != "plot"}
    with pytest.raises(ValueError, match="TrainPaths: no path for plot"):
        TrainPaths.from_mapping(outputs)


def rule_input_lines(smk: Path) -> list[str]:
    """The lines of every ``input:`` section of a rules file."""
    lines, indent = [], None
    for line in smk.read_text().splitlines():
        depth = len(line) - len(line.lstrip())
        if line.strip() == "input:":
            indent = depth
        elif indent is not None and (depth > indent or not line.strip()):
            lines.append(line)
        else:
            indent = None
    return lines


def test_consumers_take_their_inputs_from_the_producing_rule(workflow_rules):
    """No rule retypes another rule's output path: inputs are rules.X.output.Y (or input functions)."""
    for smk in sorted((ROOT / "rules").glob("*.smk")):
        # LAYOUT.set_data names a dataset (a wildcard value), not a path
        retyped = [
            line.strip()
            for line in rule_input_lines(smk)
            if "result(" in line or re.search(r"LAYOUT\.(?!set_data\()", line)
        ]
        assert retyped == [], f"{smk.name}: inputs that retype a path: {retyped}"
    assert str(workflow_rules["pack"].input.selection) == _strip_constraints(
        str(workflow_rules["select_frames"].output[0])
    )


def test_layout_paths_are_the_rule_paths(workflow_rules):
    layout = ResultsLayout("res")
    rules = workflow_rules
    assert _strip_constraints(str(rules["demo"].output[0])) == layout.demo_zip("{batch}", "{data}")
    assert _strip_constraints(str(rules["extract_faces"].output.batch)) == layout.faces_zip("{part}", "{data}")
    assert _strip_constraints(str(rules["pack"].output.index)) == layout.store_file("{batch}", "index", "{data}")
    assert _strip_constraints(str(rules["set_videos"].output[0])) == layout.set_videos("{set}")
    assert _strip_constraints(str(rules["robustness"].output.table)) == layout.robustness_file("{model}", "table")
    assert str(rules["split"].output.test) == layout.split("test")
    assert str(rules["report"].output.csv) == layout.report_file("comparison.csv")


def test_faces_report_path_is_the_layout_one():
    from dfdetect.data.faces.extract import report_path

    layout = ResultsLayout("res")
    assert str(report_path(layout.faces_zip("3"))) == layout.faces_report("3")


def test_benchmarks_import_nothing_from_tests():
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(name.split(".")[0] == "tests" for name in names), f"{path.name} imports {names}"


def _python_enums() -> dict[str, tuple[tuple[str, ...], str | None, str]]:
    """Every value list that Python code implements and the schema lists too: name -> (Python's
    values, schema section, schema key)."""
    from dfdetect.data.demo import MANIPULATIONS
    from dfdetect.data.landmarks.geometry import MODELS as LANDMARK_MODELS
    from dfdetect.evaluation.aggregate import AGGREGATIONS
    from dfdetect.training.augment import PRESETS
    from dfdetect.training.backbones import POOLINGS
    from dfdetect.training.backend import SUPPORTED_BACKENDS
    from dfdetect.training.distribute import DISTRIBUTE_MODES
    from dfdetect.training.models import ARCHS
    from dfdetect.training.recipes import FAKES, SELECTIONS

    return {
        "demo manipulations": (MANIPULATIONS, "demo", "manipulations"),
        "aggregations": (AGGREGATIONS, "evaluation", "aggregate"),
        "augment presets": (PRESETS, "model", "augment"),
        "keras backends": (SUPPORTED_BACKENDS, None, "keras_backend"),
        "distribute modes": (DISTRIBUTE_MODES, "model", "distribute"),
        "archs": (ARCHS, "model", "arch"),
        "poolings": (POOLINGS, "model", "pooling"),
        "fakes": (FAKES, "model", "fakes"),
        "selections": (SELECTIONS, "model", "selection"),
        "landmark models": (tuple(LANDMARK_MODELS), "landmarks", "model"),
    }


@pytest.mark.parametrize("name", list(_python_enums()))
def test_every_enum_in_python_and_the_schema_is_the_same(name):
    from dfdetect.schema import config_schema, schema_enum

    python_values, section, key = _python_enums()[name]
    assert tuple(python_values) == schema_enum(section, key), f"{name}: Python and the schema differ"
    if name == "demo manipulations":  # an evaluation set's demo lists them again
        set_items = config_schema()["$defs"]["evaluation_set"]["properties"]["demo"]["properties"][key]["items"]
        assert tuple(set_items["enum"]) == tuple(python_values)
