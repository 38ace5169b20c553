"""The params.yaml sections and their config classes (a lazy registry).

Each stage loads only its own section (``load_section``); :func:`validate_params`
checks the whole file, so an unknown section or key is caught by
``mgdata params check`` and by the test-suite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mgdata.config import from_dict, read_params
from mgdata.registry import Registry

# section -> "module:ConfigClass"; an unknown section is an error named by the section itself.
SECTIONS = Registry(
    "section",
    None,
    {
        "shards": "mgdata.config:ShardConfig",
        "corpus": "mgdata.corpus.config:CorpusConfig",
        "relabel": "mgdata.labels.config:RelabelConfig",
        "stems": "mgdata.stems.config:StemsConfig",
        "generate": "mgdata.generate.config:GenerateConfig",
        "embed": "mgdata.embed.config:EmbedConfig",
        "tokens": "mgdata.tokens.config:TokensConfig",
        "classify": "mgdata.classify.config:ClassifyConfig",
        "geneval": "mgdata.geneval.config:GenevalConfig",
        "decision": "mgdata.decision.config:DecisionConfig",
        "executor": "mgdata.exec:ExecConfig",
        "pipeline": "mgdata.pipeline.config:PipelineConfig",
        "report": "mgdata.htmlreport:ReportConfig",
        "hub": "mgdata.hub.config:HubConfig",
    },
)


def section_class(name: str) -> type:
    """The config class of section ``name`` (imported lazily)."""
    return SECTIONS.load(name)


def validate_params(params_path: str | Path = "params.yaml", *, return_data: bool = False) -> Any:
    """Validate every section of params.yaml.

    Args:
        params_path: The params file.
        return_data: Return the parsed mapping instead of the section names.

    Returns:
        The section names (or the mapping).

    Raises:
        ParamsError: naming the first bad key path (or the file and line of a YAML syntax error).
    """
    data = read_params(params_path)
    for name, section in data.items():
        from_dict(section_class(name), section, name)
    return data if return_data else list(data)
