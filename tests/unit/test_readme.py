"""The README stays true: its configuration table lists exactly the settings the code reads."""

from __future__ import annotations

import re
from pathlib import Path

from functions.config import EMULATOR_VARIABLES, SETTINGS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_the_configuration_table_lists_every_setting_with_its_default() -> None:
    table = {
        match.group(1): match.group(3)
        for match in re.finditer(
            r"^\| `([A-Z_]+)` \| (ingest|poller|both) \| ([^|]+) \|", README, re.M
        )
    }
    assert set(table) == {setting.name for setting in SETTINGS}
    for setting in SETTINGS:
        shown = table[setting.name].strip()
        assert shown == ("required" if setting.required else f"`{setting.default}`"), setting.name


def test_the_emulator_variables_are_documented() -> None:
    for name in EMULATOR_VARIABLES:
        assert f"`{name}`" in README
