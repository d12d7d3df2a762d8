import pytest

from hdvision.inference.inputs import InputError, list_inputs, required_labels
from tests.conftest import write_image


def test_folders_are_listed_recursively_in_order_every_file_a_row(tmp_path):
    write_image(tmp_path / "b.jpg")
    write_image(tmp_path / "sub" / "a.png", fmt="PNG")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden").write_text("skipped: hidden")
    rows = list_inputs([str(tmp_path)])
    names = [r.path.removeprefix(str(tmp_path)) for r in rows]
    assert names == ["/b.jpg", "/notes.txt", "/sub/a.png"]
    assert all(r.label is None for r in rows)


def test_a_manifest_gives_paths_relative_to_itself_and_labels(tmp_path):
    write_image(tmp_path / "img" / "x.jpg")
    # A byte-order mark, as spreadsheet tools write it.
    (tmp_path / "m.csv").write_text("\ufeffpath,label\nimg/x.jpg,cat\nimg/y.jpg,\n", "utf-8")
    rows = list_inputs([str(tmp_path / "m.csv")])
    assert [(r.path, r.label) for r in rows] == [
        (str(tmp_path / "img" / "x.jpg"), "cat"),
        (str(tmp_path / "img" / "y.jpg"), None),
    ]


def test_required_labels_are_indices_and_a_row_without_one_is_named_by_its_use(tmp_path):
    (tmp_path / "all.csv").write_text("path,label\na.jpg,dog\nb.jpg,cat\n")
    (tmp_path / "some.csv").write_text("path,label\na.jpg,dog\nb.jpg,\n")
    rows = list_inputs([str(tmp_path / "all.csv")])
    assert required_labels(rows, ["cat", "dog"], "--importance taylor") == [1, 0]
    with pytest.raises(InputError, match="--importance taylor needs labelled images"):
        required_labels(
            list_inputs([str(tmp_path / "some.csv")]), ["cat", "dog"], "--importance taylor"
        )


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.mkdir(), "holds no files"),
        (lambda p: None, "does not exist"),
        (
            lambda p: p.with_suffix(".csv").write_text("file,class\n"),
            "needs a header with a 'path'",
        ),
        (lambda p: p.with_suffix(".csv").write_text("path,label\n"), "lists no files"),
    ],
)
def test_unusable_inputs_are_named(tmp_path, make, message):
    target = tmp_path / "in"
    make(target)
    name = (
        str(target.with_suffix(".csv"))
        if "header" in message or "lists" in message
        else str(target)
    )
    with pytest.raises(InputError, match=message):
        list_inputs([name])
