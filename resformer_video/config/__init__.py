"""Configuration: defaults, loading (YAML file + ``KEY VALUE`` overrides) and validation."""

from resformer_video.config.defaults import get_cfg_defaults
from resformer_video.config.loader import ConfigError, check_data_dir, load_config, validate_config

__all__ = ["ConfigError", "check_data_dir", "get_cfg_defaults", "load_config", "validate_config"]
