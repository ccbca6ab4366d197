"""Datasources: Sedna's index/CSV parsers, their errors, and as_xy."""

from __future__ import annotations

import numpy as np
import pytest

from sedna_core.datasources import BaseDataSource, CSVDataParse, TxtDataParse, as_x, as_xy
from sedna_core.errors import DataSourceError


@pytest.fixture
def image_dir(tmp_path):
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    for i in range(3):
        np.save(root / "images" / f"{i}.npy", np.full((2, 2), i, dtype=np.float32))
    return root


def test_txt_resolves_relative_paths_against_the_index_folder(image_dir, tmp_path, monkeypatch):
    index = image_dir / "train.txt"
    index.write_text("images/0.npy 0\n\n# a comment\nimages/1.npy 1\n./images/2.npy 1\n")
    monkeypatch.chdir(tmp_path)  # not the index's folder
    ds = TxtDataParse(data_type="train").parse(str(index))
    assert len(ds) == ds.num_examples() == 3
    assert ds.x.tolist() == [str(image_dir / "images" / f"{i}.npy") for i in range(3)]
    assert ds.y.dtype == np.int64 and ds.y.tolist() == [0, 1, 1]
    assert as_xy(ds)[0] is ds.x and as_x(ds) is ds.x


def test_txt_loader_stacks_samples(image_dir):
    index = image_dir / "train.txt"
    index.write_text("images/0.npy 0\nimages/2.npy 1\n")
    ds = TxtDataParse(loader=np.load).parse(index)
    assert ds.x.shape == (2, 2, 2) and ds.x[1, 0, 0] == 2.0


def test_txt_concatenates_files_and_keeps_absolute_and_url_paths(image_dir):
    a = image_dir / "a.txt"
    a.write_text(f"{image_dir / 'images' / '0.npy'} 3\n")
    b = image_dir / "b.txt"
    b.write_text("s3://bucket/img.png 4\n")
    ds = TxtDataParse().parse(a, b)
    assert ds.x.tolist() == [str(image_dir / "images" / "0.npy"), "s3://bucket/img.png"]
    assert ds.y.tolist() == [3, 4]


def test_txt_sedna_func_and_use_raw(image_dir):
    index = image_dir / "i.txt"
    index.write_text("images/0.npy,1\nimages/1.npy,0\n")
    ds = TxtDataParse("train", func=lambda line: line.split(",")).parse(index)
    assert ds.x.tolist() == ["images/0.npy", "images/1.npy"] and ds.y.tolist() == [1, 0]
    index.write_text("a b c\nd e\n")
    raw = TxtDataParse("test").parse(index, use_raw=True, check_files=False)
    assert raw.y is None and list(raw.x[0]) == ["a", "b", "c"] and list(raw.x[1]) == ["d", "e"]


def test_txt_test_data_may_omit_labels(image_dir):
    index = image_dir / "test.txt"
    index.write_text("images/0.npy\nimages/1.npy\n")
    ds = TxtDataParse(data_type="test").parse(index)
    assert ds.is_test_data and ds.y is None and len(ds) == 2


@pytest.mark.parametrize(
    ("content", "line", "fragment"),
    [
        ("images/0.npy 0\nimages/1.npy\n", 2, "no label"),
        ("images/0.npy 0 extra\n", 1, "3 fields"),
        ("images/0.npy 0\n\nimages/missing.npy 1\n", 3, "does not exist"),
    ],
)
def test_txt_errors_name_file_and_line(image_dir, content, line, fragment):
    index = image_dir / "bad.txt"
    index.write_text(content)
    with pytest.raises(DataSourceError, match=fragment) as info:
        TxtDataParse().parse(index)
    assert info.value.path == str(index) and info.value.line == line
    assert f"{index}:{line}" in str(info.value)


def test_txt_missing_index_and_failing_func_or_loader(image_dir):
    with pytest.raises(DataSourceError, match="index file not found") as info:
        TxtDataParse().parse(image_dir / "nope.txt")
    assert info.value.path.endswith("nope.txt")
    index = image_dir / "i.txt"
    index.write_text("images/0.npy 0\nimages/1.npy 1\n")

    def boom(line):
        raise ValueError("bad")

    with pytest.raises(DataSourceError, match="func failed") as info:
        TxtDataParse(func=boom).parse(index)
    assert info.value.line == 1
    index.write_text("images/0.npy 0\nimages/1.npy 1\n")
    (image_dir / "images" / "1.npy").write_text("not numpy")
    with pytest.raises(DataSourceError, match="loader failed") as info:
        TxtDataParse(loader=np.load).parse(index)
    assert info.value.line == 2


def test_csv_parse_label_usecols_and_rows(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("a,b,city,label\n1,2.5,x,0\n3,,y,1\n")
    ds = CSVDataParse().parse(f, label="label", usecols="a,b")
    assert ds.columns == ["a", "b"] and ds.x.dtype == np.float64
    assert ds.x[0].tolist() == [1.0, 2.5] and np.isnan(ds.x[1, 1])
    assert ds.y.tolist() == [0, 1]
    mixed = CSVDataParse().parse(f, label="label")
    assert mixed.x.dtype == object and mixed.columns == ["a", "b", "city"]
    rows = CSVDataParse("test").parse({"a": 1, "b": 2}, [{"a": 3, "b": 4}])
    assert rows.x.tolist() == [[1.0, 2.0], [3.0, 4.0]] and rows.y is None


def test_csv_func_drops_and_rewrites_rows(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("a,label\n1,0\n2,1\n3,1\n")

    def keep_odd(row):
        return None if int(row["a"]) % 2 == 0 else {**row, "a": str(int(row["a"]) * 10)}

    ds = CSVDataParse(func=keep_odd).parse(f, label="label")
    assert ds.x[:, 0].tolist() == [10.0, 30.0] and ds.y.tolist() == [0, 1]


def test_csv_errors(tmp_path):
    with pytest.raises(DataSourceError, match="CSV file not found"):
        CSVDataParse().parse(tmp_path / "none.csv")
    f = tmp_path / "t.csv"
    f.write_text("a,b,label\n1,2,0\n1,2\n")
    with pytest.raises(DataSourceError, match="expected 3 fields") as info:
        CSVDataParse().parse(f, label="label")
    assert info.value.path == str(f) and info.value.line == 3
    f.write_text("a,b\n1,2\n")
    with pytest.raises(DataSourceError, match="no label column 'label'") as info:
        CSVDataParse("train").parse(f, label="label")
    assert info.value.line == 2
    assert CSVDataParse("test").parse(f, label="label").y is None
    with pytest.raises(DataSourceError, match=r"no column\(s\) \['z'\]"):
        CSVDataParse().parse(f, usecols=["z"])


def test_base_datasource_and_as_xy():
    ds = BaseDataSource(np.zeros((4, 2)), np.arange(4), data_type="eval")
    assert len(ds) == 4 and not ds.is_test_data and "n=4" in repr(ds)
    with pytest.raises(DataSourceError, match="3 labels"):
        BaseDataSource(np.zeros((4, 2)), np.arange(3))
    x, y = np.ones(3), np.zeros(3)
    assert as_xy((x, y)) == (x, y)
    assert as_xy({"x": x})[1] is None
    assert as_xy(x)[0] is x and as_xy(x)[1] is None
    assert as_x([1, 2]) == [1, 2]
    with pytest.raises(DataSourceError, match="tuple of 3"):
        as_xy((x, y, y))
    with pytest.raises(DataSourceError, match="no data"):
        as_xy(None)
    with pytest.raises(DataSourceError, match="cannot read samples from a int"):
        as_xy(3)


def test_lazy_export_from_sedna_core():
    import sedna_core

    assert sedna_core.TxtDataParse is TxtDataParse and sedna_core.CSVDataParse is CSVDataParse
