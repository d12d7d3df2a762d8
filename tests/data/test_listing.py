import pytest

from hdvision.data.listing import (
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
    with pytest.raises(DataSourceError, match="does not exist.*data.source.root"):
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


def test_a_link_back_to_the_root_is_not_a_class(image_folder):
    (image_folder / "loop").symlink_to(image_folder, target_is_directory=True)
    with pytest.raises(DataSourceError, match="loop: links to .*contains the data root"):
        report_problems(folder_samples(image_folder), "the folder", "raise")
    source = folder_samples(image_folder)
    assert "loop" in source.class_names and len(source) == 18  # the link adds no samples


def test_the_same_file_twice_is_reported(image_folder):
    (image_folder / "dog" / "again.jpg").symlink_to(image_folder / "cat" / "0.jpg")
    source = folder_samples(image_folder)
    assert len(source) == 18
    assert any("again.jpg: the same file as" in p for p in source.problems)


def test_an_empty_class_folder_is_warned_about(image_folder, caplog):
    (image_folder / "fox").mkdir()
    folder_samples(image_folder)
    assert "fox holds no images" in caplog.text


def test_manifest_repeats_conflicts_and_byte_order_mark(tmp_path, caplog):
    for name in ("a", "b"):
        write_image(tmp_path / f"{name}.jpg")
    text = "\ufeffpath,label\na.jpg,cat\na.jpg,cat\nb.jpg,dog\nb.jpg,cat\n"
    (tmp_path / "m.csv").write_text(text, encoding="utf-8")
    source = manifest_samples(tmp_path / "m.csv")
    assert source.samples == [(str(tmp_path / "a.jpg"), 0), (str(tmp_path / "b.jpg"), 1)]
    assert "2 repeated rows" in caplog.text
    (conflict,) = source.problems
    assert "row 5" in conflict and "labelled 'cat' here and 'dog' in row 4" in conflict


def test_a_source_of_ones_own_is_one_class_and_a_config_target(tmp_path):
    # The datamodule only loads what a source lists: no branch to add for a new kind of data.
    from hdvision.data.datamodule import HDImageDataModule
    from hdvision.data.listing import SampleList
    from tests.conftest import write_image

    paths = [str(write_image(tmp_path / f"{i}.png", size=(32, 48), seed=i)) for i in range(6)]

    class EvenOdd:
        def prepare(self) -> None:
            pass

        def class_names(self) -> list[str]:
            return ["even", "odd"]

        def splits(self, class_names):
            samples = [(p, i % 2) for i, p in enumerate(paths)]
            return {
                "train": SampleList(samples[:4], class_names),
                "val": SampleList(samples[4:], class_names),
            }

    dm = HDImageDataModule(
        EvenOdd(), image_size=(32, 48), aug_scale=1.0, batch_size=2, num_workers=0
    )
    dm.prepare_data()
    dm.setup()
    assert dm.num_classes == 2 and len(dm.datasets["train"]) == 4
    batch = next(iter(dm.val_dataloader()))
    assert batch["image"].shape == (2, 3, 32, 48) and batch["label"].tolist() == [0, 1]
