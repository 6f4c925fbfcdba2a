"""Configuration: defaults, loading (YAML file + ``KEY VALUE`` overrides) and validation."""

from resformer_video.config.defaults import get_cfg_defaults
from resformer_video.config.loader import ConfigError, check_data_dir, check_pretrained, load_config, validate_config
from resformer_video.config.overrides import cfg_with

__all__ = [
    "ConfigError",
    "cfg_with",
    "check_data_dir",
    "check_pretrained",
    "get_cfg_defaults",
    "load_config",
    "validate_config",
]
