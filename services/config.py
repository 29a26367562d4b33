"""Reading deploy/config.yaml the way `nameko run --config` does (with ${VAR:default} placeholders)."""
from __future__ import annotations

import os
import pathlib

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = ROOT / "deploy" / "config.yaml"


def config_path() -> pathlib.Path:
    return pathlib.Path(os.environ.get("TRIAL_BALLOON_CONFIG", DEFAULT_CONFIG_PATH))


def load_config(path: str | os.PathLike | None = None) -> dict:
    from nameko.cli.main import setup_yaml_parser

    setup_yaml_parser()
    with open(path or config_path(), encoding="utf-8") as handle:
        return yaml.safe_load(handle)
