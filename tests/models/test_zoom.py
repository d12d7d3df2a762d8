import pytest
import torch
import torch.nn.functional as F

from hdvision.models.resample import resampling_matrix, separable_resample
from hdvision.models.stems import create_stem
from hdvision.models.stems.zoom import inverse_cdf_coords


def test_uniform_density_samples_the_identity_grid():
    coords = inverse_cdf_coords(torch.full((2, 7), 1 / 7), 10)
    expected = (torch.arange(10) + 0.5) / 10 * 2 - 1
    assert torch.allclose(coords, expected.expand(2, 10), atol=1e-6)


def test_output_pixels_are_spent_in_proportion_to_density():
    density = torch.tensor([[0.1, 0.6, 0.1, 0.1, 0.1]])
    coords = inverse_cdf_coords(density, 100)
    assert torch.all(coords[:, 1:] > coords[:, :-1]) and coords.abs().max() <= 1
    in_bin = ((coords > -1 + 2 / 5) & (coords < -1 + 4 / 5)).sum().item()
    assert in_bin == 60


def test_bin_lookup_is_searchsorted_right():
    # The comparison count that replaced torch.searchsorted (which ONNX lacks) finds the same bins.
    density = torch.rand(3, 37, dtype=torch.float64) + 0.01
    density[1, 5:9] = 0  # empty bins: repeated CDF edges
    cdf = torch.cat([torch.zeros(3, 1, dtype=torch.float64), density.cumsum(1)], 1)
    cdf = cdf / cdf[:, -1:]
    t = ((torch.arange(101, dtype=torch.float64) + 0.5) / 101).expand(3, 101).contiguous()
    expected = torch.searchsorted(cdf, t, right=True).clamp(1, 37)
    m = density.shape[1]
    lo = cdf.gather(1, expected - 1)
    hi = cdf.gather(1, expected)
    frac = ((t - lo) / (hi - lo).clamp_min(1e-12)).clamp(0, 1)
    reference = ((expected - 1).to(t.dtype) + frac) / m * 2 - 1
    torch.testing.assert_close(inverse_cdf_coords(density, 101), reference)


def test_starts_as_its_inner_stem_on_the_unwarped_image():
    stem = create_stem(
        "saliency_sampler", (12, 20), inner={"name": "strided"}, detail_prior=False
    ).eval()
    x = torch.randn(2, 3, 96, 160)
    assert torch.allclose(stem.warp(x), x, atol=1e-5)
    assert torch.allclose(stem(x), stem.inner(x), atol=1e-6)


def _square(size=(48, 80), box=(20, 28, 30, 38)):
    x = torch.zeros(1, 3, *size)
    y0, y1, x0, x1 = box
    x[..., y0:y1, x0:x1] = 1.0
    return x


def test_a_salient_region_is_magnified():
    stem = create_stem("saliency_sampler", (12, 20), zoom_share=0.8, detail_prior=False).eval()
    x = _square()
    peaked = torch.zeros(1, 12, 20)
    peaked[:, 5:7, 7:9] = 0.25  # saliency where the square is
    stem.saliency_map = lambda _: peaked
    warped = stem.warp(x)
    assert warped.shape == x.shape
    assert warped.mean() > 3 * x.mean()


def test_the_zoom_is_learned_from_the_loss_gradient():
    # Reward bright output pixels: only zooming in on the square earns it.
    torch.manual_seed(0)
    stem = create_stem("saliency_sampler", (12, 20), inner={"name": "resize"}, detail_prior=False)
    x = _square().repeat(4, 1, 1, 1)
    optimizer = torch.optim.Adam(stem.parameters(), lr=0.05)
    before = stem.warp(x).mean().item()
    for _ in range(30):
        optimizer.zero_grad()
        (-stem(x).mean()).backward()
        optimizer.step()
    assert stem.eval().warp(x).mean().item() > 2 * before


def test_the_detail_prior_zooms_on_detail_and_leaves_a_flat_image_alone():
    stem = create_stem("saliency_sampler", (12, 20)).eval()
    x = _square()
    x[..., 20:28, 28:38] = torch.rand(8, 10) > 0.5  # texture on a flat background
    assert stem.warp(x).mean() > 3 * x.mean()
    flat = torch.full((1, 3, 48, 80), 0.3)
    assert torch.allclose(stem.warp(flat), flat, atol=1e-6)


def test_zoom_share_out_of_range_is_an_error():
    with pytest.raises(ValueError, match="zoom_share"):
        create_stem("saliency_sampler", (12, 20), zoom_share=1.0)


def test_runs_under_bf16_autocast():
    torch.manual_seed(0)
    stem = create_stem("saliency_sampler", (12, 20)).eval()
    x = _square().repeat(2, 1, 1, 1)
    reference = stem(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = stem(x)
    assert y.shape == reference.shape and torch.isfinite(y).all()
    assert torch.allclose(y.float(), reference, atol=0.05)


def test_full_resolution_sampling_returns_the_backbone_size_and_trains_the_saliency_net():
    # A 4x larger decode than the warp: the zoom samples real pixels, the convolutions never see
    # the large image, and the gradient reaches the learned correction through the grid.
    torch.manual_seed(0)
    stem = create_stem("saliency_sampler", (12, 20), warp_size=(48, 80))
    x = torch.rand(2, 3, 192, 320, requires_grad=True)
    out = stem(x)
    assert out.shape == (2, 3, 12, 20)
    assert stem.warp(x).shape == (2, 3, 48, 80)
    out.square().mean().backward()
    grads = [p.grad for p in stem.saliency.parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    assert stem.prior_weight.grad is not None and stem.prior_weight.grad.abs() > 0
    seen = []
    for conv in (m for m in stem.modules() if isinstance(m, torch.nn.Conv2d)):
        conv.register_forward_hook(lambda _m, inp, _o: seen.append(inp[0].shape[-2:]))
    stem(x)
    assert max(h * w for h, w in seen) <= 48 * 80  # no convolution at 192x320
    with pytest.raises(ValueError, match="warp_size must be two positive sizes"):
        create_stem("saliency_sampler", (12, 20), warp_size=[0, 80])


def test_full_resolution_zoom_magnifies_real_pixels():
    # A fine checkerboard (1 px period) survives a 2x zoom from the full decode, not from a
    # half-size decode that area downsampling has already averaged to flat grey.
    stem = create_stem("saliency_sampler", (8, 8), inner={"name": "resize"}, warp_size=(32, 32))
    board = (torch.arange(64)[:, None] + torch.arange(64)[None, :]) % 2
    image = torch.zeros(1, 3, 64, 64)
    image[..., 16:48, 16:48] = board[16:48, 16:48].float()
    with torch.no_grad():
        full = stem.warp(image)
        half = create_stem("saliency_sampler", (8, 8), inner={"name": "resize"}).warp(
            torch.nn.functional.avg_pool2d(image, 2)
        )

    def detail(x):  # mean change between neighbouring pixels: the board's, not its edge's
        return float((x[..., 1:] - x[..., :-1]).abs().mean())

    assert detail(full) > 2 * detail(half)


def test_without_the_learned_correction_the_detail_prior_alone_zooms():
    stem = create_stem("saliency_sampler", (12, 20), learned_correction=False).eval()
    assert stem.saliency is None
    assert {n for n, _ in stem.named_parameters() if not n.startswith("inner.")} == {"prior_weight"}
    x = _square()
    x[..., 20:28, 28:38] = torch.rand(8, 10) > 0.5
    with_correction = create_stem("saliency_sampler", (12, 20)).eval()
    # The correction starts at zero, so both begin with the same zoom: the prior's.
    torch.testing.assert_close(stem.saliency_map(x), with_correction.saliency_map(x))
    assert stem.warp(x).mean() > 3 * x.mean()
    stem(x.repeat(2, 1, 1, 1)).mean().backward()
    assert stem.prior_weight.grad is not None


def test_neither_prior_nor_correction_is_an_error():
    with pytest.raises(ValueError, match="detail_prior and learned_correction are both false"):
        create_stem("saliency_sampler", (12, 20), detail_prior=False, learned_correction=False)


def _grid_sample_warp(stem, x):
    """The zoom as it was implemented before the separable matrices: one bilinear grid_sample."""
    saliency = stem.saliency_map(x)
    height, width = stem.warp_size or x.shape[-2:]
    axes = []
    for marginal, num in ((saliency.sum(1), width), (saliency.sum(2), height)):
        density = (1 - stem.zoom_share) / marginal.shape[1] + stem.zoom_share * marginal
        axes.append(inverse_cdf_coords(density.double(), num))
    gx, gy = axes
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)
    return F.grid_sample(
        x, grid.to(x.dtype), mode="bilinear", padding_mode="border", align_corners=False
    )


@pytest.mark.parametrize("warp_size", [None, (20, 28), (96, 160)])
def test_the_separable_zoom_equals_the_grid_sample_zoom(warp_size):
    # Bilinear resampling matrices compute the grid_sample zoom of the earlier implementation
    # (which models trained before antialiasing still run), within 1e-5.
    torch.manual_seed(0)
    stem = create_stem("saliency_sampler", (12, 20), warp_size=warp_size).eval()
    torch.nn.init.normal_(stem.saliency[-1].weight, std=0.5)  # a correction that moves the zoom
    x = _square()
    x[..., 20:28, 28:38] = torch.rand(8, 10)
    x = x + 0.1 * torch.rand_like(x)
    with torch.no_grad():
        reference = _grid_sample_warp(stem, x)
        torch.testing.assert_close(stem.warp(x), reference, atol=1e-6, rtol=0)  # antialias off
        rows, cols = stem.sampling_coords(x)
        by_matrices = separable_resample(
            x,
            resampling_matrix(rows, 48, antialias=False),
            resampling_matrix(cols, 80, antialias=False, source_first=True),
        )
        torch.testing.assert_close(by_matrices, reference, atol=1e-5, rtol=0)
        if warp_size == (96, 160):  # output pixels denser than input everywhere: no filter to
            stem.antialias = True  # widen, the antialiased zoom is the same image
            torch.testing.assert_close(stem.warp(x), reference, atol=1e-5, rtol=0)


def test_resampling_rows_hold_bilinear_weights_and_the_border():
    coords = torch.tensor([[-1.5, -1.0, -0.5, 0.1, 1.0, 2.0]], dtype=torch.float64)
    weights = resampling_matrix(coords, 4, antialias=False)
    assert weights.shape == (1, 6, 4)
    assert weights.dtype == torch.float32  # built in float32 from float64 positions
    torch.testing.assert_close(weights.sum(-1), torch.ones(1, 6))
    assert weights[0, 0].tolist() == [1, 0, 0, 0] and weights[0, 5].tolist() == [0, 0, 0, 1]
    # -0.5 is source position 1.0 (pixel centres at j + 0.5): halfway between pixels 0 and 1.
    torch.testing.assert_close(weights[0, 2], torch.tensor([0.5, 0.5, 0, 0]))


def test_without_a_gradient_the_matrices_are_the_triangle_alone():
    # Inference and export skip the bilinear branch that exists for the gradient at pixel
    # centres: the weights stay the same, in either layout.
    coords = (torch.linspace(-1.2, 1.2, 30, dtype=torch.float64) ** 3)[None].requires_grad_()
    with_grad = resampling_matrix(coords, 20)
    assert with_grad.requires_grad
    with torch.no_grad():
        without = resampling_matrix(coords, 20)
        source_first = resampling_matrix(coords, 20, source_first=True)
    torch.testing.assert_close(without, with_grad.detach(), atol=1e-6, rtol=0)
    torch.testing.assert_close(source_first, without.transpose(1, 2))


def test_the_antialiased_zoom_averages_where_it_shrinks():
    # A 1-px checkerboard shrunk ~3x: bilinear sampling reads two pixels per output pixel at
    # uneven weights (a pattern of greys), the antialiased matrices average every pixel in
    # (flat grey); a constant stays constant.
    board = ((torch.arange(64)[:, None] + torch.arange(64)[None, :]) % 2).float()
    x = board.expand(1, 3, 64, 64).contiguous()
    outputs = {}
    for antialias in (False, True):
        stem = create_stem(
            "saliency_sampler",
            (21, 21),
            inner={"name": "resize"},
            detail_prior=False,
            warp_size=(21, 21),
            antialias=antialias,
        ).eval()
        with torch.no_grad():
            outputs[antialias] = stem.warp(x)
            flat = torch.full((1, 3, 64, 64), 0.3)
            torch.testing.assert_close(stem.warp(flat), flat[..., :21, :21], atol=1e-6, rtol=0)
    assert outputs[False].std() > 0.1
    assert outputs[True].std() < 0.03 and abs(float(outputs[True].mean()) - 0.5) < 0.02


def test_zooming_straight_to_the_backbone_size_trains_the_saliency_net():
    torch.manual_seed(0)
    stem = create_stem(
        "saliency_sampler", (12, 20), inner={"name": "resize"}, warp_size=(12, 20), antialias=True
    )
    x = _square().repeat(2, 1, 1, 1)
    x[..., 20:28, 28:38] = torch.rand(8, 10)
    out = stem(x)
    assert out.shape == (2, 3, 12, 20)
    out.square().mean().backward()
    grads = [p.grad for p in stem.saliency.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
