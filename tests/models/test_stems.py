import pytest
import torch
from torch import nn

from hdvision.models.stems import STEMS, create_stem

SIZES = [(1080, 1920), (1079, 1917), (1920, 1080)]
LEARNED = ["strided", "space_to_depth", "learned_resizer", "saliency_sampler"]


@pytest.mark.parametrize("name", sorted(STEMS))
@pytest.mark.parametrize("size", SIZES)
def test_output_shape_and_dtype_for_odd_and_portrait_sizes(name, size):
    kwargs = {"factor": 8} if name == "space_to_depth" else {}
    out_size = (size[0] // 8, size[1] // 8)
    stem = create_stem(name, out_size, **kwargs)
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        y = stem(x)
    expected = size if name == "none" else out_size
    assert y.shape == (1, 3, *expected) and y.dtype == torch.float32


@pytest.mark.parametrize("name", LEARNED)
def test_gradients_reach_every_parameter(name):
    stem = create_stem(name, (12, 20))
    x = torch.randn(2, 3, 96, 160, requires_grad=True)
    stem(x).pow(2).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    # The zero-initialised output conv gets gradient first; after one step everything does.
    torch.optim.SGD(stem.parameters(), lr=0.1).step()
    stem.zero_grad()
    stem(x).pow(2).sum().backward()
    for pname, p in stem.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", LEARNED)
def test_learned_stems_start_as_their_resize_skip_path(name):
    kwargs = {"detail_prior": False} if name == "saliency_sampler" else {}
    stem = create_stem(name, (12, 20), **kwargs).eval()
    x = torch.randn(1, 3, 96, 160)
    skip_mode = "bilinear" if name == "learned_resizer" else "area"
    reference = create_stem("resize", (12, 20), mode=skip_mode)
    assert torch.allclose(stem(x), reference(x), atol=1e-5)


@pytest.mark.parametrize("name", LEARNED + ["resize"])
def test_channels_last_gives_the_same_result(name):
    stem = create_stem(name, (12, 20)).eval()
    for p in stem.parameters():
        p.data.normal_(0, 0.1)
    x = torch.randn(2, 3, 96, 160)
    y = stem(x)
    stem_cl = stem.to(memory_format=torch.channels_last)
    y_cl = stem_cl(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(y, y_cl, atol=1e-4)


def test_unknown_stem_lists_the_registered_ones():
    with pytest.raises(ValueError, match="registered stems: .*space_to_depth"):
        create_stem("pixel_magic", (8, 8))


def test_area_matrices_are_adaptive_average_pooling():
    # What `resize` exports for sizes that do not divide (ONNX has no adaptive pooling).
    import torch.nn.functional as F

    from hdvision.models.layers import area_matrix

    x = torch.randn(2, 3, 27, 50)
    pooled = area_matrix(27, 7, x) @ x @ area_matrix(50, 12, x).T
    torch.testing.assert_close(pooled, F.adaptive_avg_pool2d(x, (7, 12)), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(
    ("shape", "size", "matmuls"),
    [((2, 3, 270, 480), (34, 60), 1), ((2, 3, 28, 50), (7, 12), 1), ((2, 3, 27, 50), (7, 12), 2)],
)
def test_an_exported_area_resize_pools_each_axis_that_divides(shape, size, matmuls):
    # Under export (ONNX has no adaptive pooling) an axis that divides is a mean over a reshape,
    # one that does not a matmul: what onnxruntime runs; the same values as the eager pooling.
    import torch.nn.functional as F

    from hdvision.models.layers import resize

    class Resize(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return resize(x, size)

    x = torch.randn(*shape)
    program = torch.export.export(Resize(), (x,))
    targets = [str(n.target) for n in program.graph.nodes if n.op == "call_function"]
    assert targets.count("aten.matmul.default") == matmuls, targets
    assert not [t for t in targets if "adaptive" in t]
    expected = F.adaptive_avg_pool2d(x, size)
    torch.testing.assert_close(program.module()(x), expected, atol=1e-6, rtol=1e-5)


def test_a_stem_name_is_registered_once():
    from hdvision.models.stems import register_stem

    with pytest.raises(ValueError, match="stem 'resize' is already registered"):

        @register_stem("resize")
        class Other(nn.Module):
            pass


def test_the_registry_imports_no_stem():
    # The families import the registry, never the reverse: no import loop between stem files.
    import ast
    import inspect

    from hdvision.models.stems import registry

    tree = ast.parse(inspect.getsource(registry))
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m and m.startswith("hdvision")]
