"""Keeping the content's colours (Gatys, Bethge, Hertzmann & Shechtman 2016, "Preserving Color in
Neural Artistic Style Transfer"). Both of the paper's methods:

- luminance-only transfer: optimise on luminance images (the style's luminance matched to the
  content's mean and spread), then put the content's colour channels back (YIQ);
- colour histogram matching: recolour the style image so its colour mean and covariance match the
  content's, then transfer as usual.
All functions take and return (1, 3, H, W) tensors in [0, 1].
"""

from __future__ import annotations

import torch

# NTSC RGB -> YIQ, as in the paper.
_RGB_TO_YIQ = torch.tensor([
    [0.299, 0.587, 0.114],
    [0.595716, -0.274453, -0.321263],
    [0.211456, -0.522591, 0.311135],
])
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


def _apply(matrix: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", matrix.to(image.device, image.dtype), image)


def rgb_to_yiq(image: torch.Tensor) -> torch.Tensor:
    return _apply(_RGB_TO_YIQ, image)


def yiq_to_rgb(image: torch.Tensor) -> torch.Tensor:
    return _apply(_YIQ_TO_RGB, image)


def luminance(image: torch.Tensor) -> torch.Tensor:
    """(1, 1, H, W) luminance Y."""
    return rgb_to_yiq(image)[:, :1]


def as_gray_rgb(y: torch.Tensor) -> torch.Tensor:
    """A luminance channel as a 3-channel image (what VGG expects)."""
    return y.clamp(0, 1).expand(-1, 3, -1, -1).contiguous()


def match_luminance(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The style's luminance, shifted and scaled to the content's mean and standard deviation.

    The paper does this so that the style's overall brightness and contrast do not override the
    content's; only the texture of the luminance is transferred.
    """
    ys, yc = luminance(style), luminance(content)
    matched = (ys - ys.mean()) / (ys.std() + 1e-6) * yc.std() + yc.mean()
    return as_gray_rgb(matched)


def recombine(output: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The output's luminance with the content's I and Q colour channels, back in RGB."""
    y = luminance(output)
    iq = rgb_to_yiq(content)[:, 1:]
    return yiq_to_rgb(torch.cat([y, iq], dim=1)).clamp(0, 1)


def _mean_cov(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    pixels = image.reshape(3, -1).double()
    mean = pixels.mean(dim=1, keepdim=True)
    centred = pixels - mean
    cov = centred @ centred.T / pixels.shape[1] + 1e-5 * torch.eye(3, dtype=torch.float64, device=image.device)
    return mean, cov


def _sqrtm(matrix: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(matrix)
    values = values.clamp_min(1e-10).sqrt()
    if inverse:
        values = 1 / values
    return vectors @ torch.diag(values) @ vectors.T


def match_histogram(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Recolour `style` so its pixel colours have the content's mean and covariance.

    x' = C_c^(1/2) C_s^(-1/2) (x - mu_s) + mu_c, the symmetric (eigenvalue) square-root variant the
    paper reports as giving the most natural colours.
    """
    mu_s, cov_s = _mean_cov(style)
    mu_c, cov_c = _mean_cov(content)
    transform = _sqrtm(cov_c) @ _sqrtm(cov_s, inverse=True)
    pixels = style.reshape(3, -1).double()
    out = transform @ (pixels - mu_s) + mu_c
    return out.reshape(style.shape).to(style.dtype).clamp(0, 1)


def colour_targets(mode: str, content: torch.Tensor, styles: list[torch.Tensor]):
    """(content target, style images) for `preserve_color` mode at one scale.

    "luminance": both become luminance images (the style's matched to the content's), and the
    result gets the content's colours back afterwards (`recombine`). "histogram": the styles are
    recoloured to the content's colour statistics. "none": unchanged.
    """
    if mode == "luminance":
        return as_gray_rgb(luminance(content)), [match_luminance(style, content) for style in styles]
    if mode == "histogram":
        return content, [match_histogram(style, content) for style in styles]
    return content, list(styles)


# --- OkLab (Björn Ottosson, "A perceptual color space for image processing", 2020) ------------------

_LINEAR_TO_LMS = torch.tensor([
    [0.4122214708, 0.5363325363, 0.0514459929],
    [0.2119034982, 0.6806995451, 0.1073969566],
    [0.0883024619, 0.2817188376, 0.6299787005],
])
_LMS_TO_OKLAB = torch.tensor([
    [0.2104542553, 0.7936177850, -0.0040720468],
    [1.9779984951, -2.4285922050, 0.4505937099],
    [0.0259040371, 0.7827717662, -0.8086757660],
])


def srgb_to_linear(image: torch.Tensor) -> torch.Tensor:
    image = image.clamp(0, 1)
    return torch.where(image <= 0.04045, image / 12.92, ((image + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(image: torch.Tensor) -> torch.Tensor:
    image = image.clamp(0, 1)
    return torch.where(image <= 0.0031308, image * 12.92, 1.055 * image ** (1 / 2.4) - 0.055)


def rgb_to_oklab(image: torch.Tensor) -> torch.Tensor:
    lms = _apply(_LINEAR_TO_LMS, srgb_to_linear(image))
    return _apply(_LMS_TO_OKLAB, lms.clamp_min(0) ** (1 / 3))


def oklab_to_rgb(image: torch.Tensor) -> torch.Tensor:
    lms = _apply(torch.linalg.inv(_LMS_TO_OKLAB), image) ** 3
    return linear_to_srgb(_apply(torch.linalg.inv(_LINEAR_TO_LMS), lms))


def _affine_match(source: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """`source` channels (1, C, H, W) moved to `reference`'s mean and covariance (as match_histogram)."""
    channels = source.shape[1]

    def stats(x):
        flat = x.reshape(channels, -1).double()
        mean = flat.mean(1, keepdim=True)
        centred = flat - mean
        return mean, centred @ centred.T / flat.shape[1] + 1e-6 * torch.eye(channels, dtype=torch.float64,
                                                                             device=x.device)

    mu_s, cov_s = stats(source)
    mu_r, cov_r = stats(reference)
    out = _sqrtm(cov_r) @ _sqrtm(cov_s, inverse=True) @ (source.reshape(channels, -1).double() - mu_s) + mu_r
    return out.reshape(source.shape).to(source.dtype)


def oklab_chroma(output: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The output's OkLab lightness with the content's chroma (a, b), that chroma brought to the output's
    own mean and spread of a and b.

    NNST's colourisation (Kolkin et al. 2022): where each colour goes follows the photo, which keeps
    skin, sky and foliage apart, while the palette stays the painting's (the output's chroma
    statistics are the style's as painted). Unlike `luminance`, which gives the photo's own colours
    back, the result still looks painted in the style's colours. OkLab separates lightness from
    chroma more cleanly than YIQ, so the swap shifts no perceived brightness.
    """
    if content.shape[-2:] != output.shape[-2:]:
        content = torch.nn.functional.interpolate(content, size=output.shape[-2:], mode="bilinear",
                                                  align_corners=False)
    lab_out, lab_content = rgb_to_oklab(output), rgb_to_oklab(content)
    chroma = _affine_match(lab_content[:, 1:], lab_out[:, 1:])
    return oklab_to_rgb(torch.cat([lab_out[:, :1], chroma], dim=1)).clamp(0, 1)
