"""How many decision loops a campaign_engine worker process runs (TENIN_DECISION_THREADS)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.config import ConfigError, Settings


def test_one_decision_thread_unless_set(tmp_path: Path) -> None:
    embedded = Settings.from_env({"TENIN_DATA_DIR": str(tmp_path)})
    postgres = Settings.from_env({"DATABASE_URL": "postgresql+psycopg://u:p@h/db"})
    assert (embedded.decision_threads, postgres.decision_threads) == (1, 1)
    set_to_three = Settings.from_env(
        {"DATABASE_URL": "postgresql+psycopg://u:p@h/db", "TENIN_DECISION_THREADS": "3"}
    )
    assert set_to_three.decision_threads == 3
    for bad in ("0", "1.5", "many"):
        with pytest.raises(ConfigError, match="TENIN_DECISION_THREADS"):
            Settings.from_env({"TENIN_DECISION_THREADS": bad})
