"""Shipped pretrained models (one folder each, beside this file) and the preset loader."""

from rar_keras.presets.loader import (is_preset_folder, list_presets, load_preset, preset_folder,
                                      read_preset_config, save_preset)

__all__ = ["is_preset_folder", "list_presets", "load_preset", "preset_folder", "read_preset_config",
           "save_preset"]
