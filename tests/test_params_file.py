"""The committed params.yaml and dvc.yaml: valid, commented, and wired to what each stage reads."""

import re
from pathlib import Path

import yaml

from mgdata.params import SECTIONS, validate_params

ROOT = Path(__file__).resolve().parents[1]
KEY = re.compile(r"^(\s+)([A-Za-z_][\w]*):")


def test_params_yaml_validates():
    assert set(validate_params(ROOT / "params.yaml")) == set(SECTIONS)


def test_every_hyperparameter_has_a_why_comment():
    """Every key below a section has a comment line above it (nanoGPT style)."""
    lines = (ROOT / "params.yaml").read_text().splitlines()
    missing = []
    for i, line in enumerate(lines):
        m = KEY.match(line)
        if not m:
            continue
        j = i - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        prev = lines[j].strip()
        # a key directly under a commented parent block counts only if it has its own comment
        if not prev.startswith("#"):
            missing.append(f"line {i + 1}: {line.strip()}")
    assert not missing, "params without a why-comment:\n" + "\n".join(missing)


def _lookup(params, dotted):
    node = params
    for part in dotted.split("."):
        node = node[part]
    return node


def _items(params, stage):
    """The foreach/matrix items of a stage as substitution dicts (``item`` / ``item.x`` -> value)."""
    import itertools

    if "foreach" in stage:
        values = _lookup(params, stage["foreach"][2:-1])
        return [{"item": v} for v in values]
    if "matrix" in stage:
        axes = {k: _lookup(params, v[2:-1]) if isinstance(v, str) else v for k, v in stage["matrix"].items()}
        combos = itertools.product(*axes.values())
        return [{f"item.{k}": v for k, v in zip(axes, combo)} for combo in combos]
    return [{}]


def test_dvc_stages_declare_existing_params():
    """Every params dep of every stage instance (foreach/matrix items substituted) exists in params.yaml."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        body = stage.get("do", stage)
        for item in _items(params, stage):
            for dep in body.get("params", []):
                for key, value in item.items():
                    if isinstance(value, dict):  # e.g. embed.artifacts items: ${item.artifact.name}
                        for sub, v in value.items():
                            dep = dep.replace("${" + f"{key}.{sub}" + "}", str(v))
                    dep = dep.replace("${" + key + "}", str(value))
                node = params
                for part in dep.split("."):
                    assert isinstance(node, dict) and part in node, f"stage {name} {item}: params dep {dep} missing"
                    node = node[part]
