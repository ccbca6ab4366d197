"""sedna-compat's data sources behave as Sedna's where programs rely on it; sedna-core's native
ones keep their strict errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
from structlog.testing import capture_logs

from sedna_core.datasources import CSVDataParse as NativeCSV
from sedna_core.datasources import TxtDataParse as NativeTxt
from sedna_core.errors import DataSourceError


def test_txt_parse_of_nothing_is_an_empty_source_logged_once(tmp_path: Path) -> None:
    from sedna.datasources import TxtDataParse

    missing = tmp_path / "nowhere.txt"
    with capture_logs() as logs:
        for _ in range(3):  # Sedna's federated trainers parse TEST_DATASET_URL (unset): None
            none = TxtDataParse(data_type="test", func=lambda line: line.split(","))
            none.parse(None)
            assert len(none) == 0 and not none
            gone = TxtDataParse(data_type="train")
            gone.parse(str(missing))
            assert len(gone) == 0 and gone.y is not None and len(gone.y) == 0
    said = [e for e in logs if e["event"].startswith("no data file here")]
    assert [e["path"] for e in said] == [None, str(missing)]  # once per path, per process

    present = tmp_path / "index.txt"
    present.write_text("a 1\n")
    mixed = TxtDataParse(data_type="train")
    mixed.parse(str(missing), str(present), check_files=False)
    assert mixed.y.tolist() == [1]


def test_native_txt_parse_stays_strict(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError, match="index file not found"):
        NativeTxt("train").parse(str(tmp_path / "nowhere.txt"))
    with pytest.raises(DataSourceError, match=r"no index file given \(None\)"):
        NativeTxt("test").parse(None)  # type: ignore[arg-type]


def _csv(path: Path) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Season", "City", "t", "label"])
        writer.writerows([["Summer", "Rome", "25.5", "1"], ["Winter", "Oslo", "", "0"]])
    return path


def test_csv_func_gets_a_pandas_frame_as_in_sedna(tmp_path: Path) -> None:
    from sedna.datasources import CSVDataParse

    seen = []

    def feature_process(df: pd.DataFrame) -> pd.DataFrame:  # the ATCII example's style
        seen.append(type(df))
        if "City" in df.columns:
            df.drop(["City"], axis=1, inplace=True)
        df["t"] = df["t"].apply(lambda x: float(x) if x == x else 0.0)
        return df

    data = CSVDataParse(data_type="train", func=feature_process)
    data.parse(str(_csv(tmp_path / "a.csv")), label="label")
    assert seen == [pd.DataFrame]
    assert isinstance(data.x, pd.DataFrame) and list(data.x.columns) == ["Season", "t"]
    assert data.x["t"].tolist() == [25.5, 0.0] and data.y.tolist() == [1, 0]

    row = CSVDataParse(data_type="test", func=feature_process)  # a row as a mapping, as the
    row.parse({"Season": "Summer", "City": "Rome", "t": "20", "label": "1"}, label="label")
    assert row.x.to_dict("records") == [{"Season": "Summer", "t": 20.0}]  # inference example
    assert seen == [pd.DataFrame, pd.DataFrame]


def test_native_csv_func_still_gets_rows(tmp_path: Path) -> None:
    rows = []
    data = NativeCSV("train", func=lambda r: rows.append(dict(r)) or r)
    data.parse(str(_csv(tmp_path / "a.csv")), label="label")
    assert rows[0]["Season"] == "Summer" and data.y.tolist() == [1, 0]
