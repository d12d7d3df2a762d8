import pytest

from hdvision.data.sources import (
    DataSourceError,
    folder_samples,
    manifest_samples,
    report_problems,
)
from tests.conftest import write_image


def test_folder_lists_images_by_sorted_class(image_folder):
    source = folder_samples(image_folder)
    assert source.class_names == ["cat", "dog", "eel"]
    assert len(source) == 18 and {label for _, label in source.samples} == {0, 1, 2}


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DataSourceError, match="does not exist.*data.root"):
        folder_samples(tmp_path / "nope")


def test_folder_without_images_is_a_clear_error(tmp_path):
    (tmp_path / "cls").mkdir()
    (tmp_path / "cls" / "notes.txt").write_text("x")
    with pytest.raises(DataSourceError, match="holds no images"):
        folder_samples(tmp_path)


def test_manifest_reports_missing_files_and_unknown_labels_with_row_numbers(tmp_path):
    write_image(tmp_path / "a.jpg")
    write_image(tmp_path / "b.jpg")
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\na.jpg,cat\nmissing.jpg,cat\nb.jpg,zebra\nb.jpg,dog\n")
    source = manifest_samples(manifest, class_names=["cat", "dog"])
    assert [label for _, label in source.samples] == [0, 1]
    assert any("row 3" in p and "missing.jpg" in p for p in source.problems)
    assert any("row 4" in p and "zebra" in p for p in source.problems)
    with pytest.raises(DataSourceError, match="2 bad entries(.|\n)*row 3"):
        report_problems(source, "the train split", "raise")
    report_problems(source, "the train split", "skip")  # logged, not raised


def test_manifest_needs_path_and_label_columns(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("file,class\na.jpg,0\n")
    with pytest.raises(DataSourceError, match="'path' and 'label'"):
        manifest_samples(manifest)
