"""Stems (image → backbone input) by name: ``create_stem(name, out_size, **kwargs)``.

Importing the package registers every family: ``basic`` (resize, strided, space_to_depth,
learned_resizer, none) and ``zoom`` (saliency_sampler). A new stem: a module here with classes
decorated ``@register_stem("name")``, imported below, and ``conf/model/stem/<name>.yaml``.
"""

from hdvision.models.stems import basic, zoom  # noqa: F401  (registers the stems)
from hdvision.models.stems.registry import STEMS, create_stem, register_stem

__all__ = ["STEMS", "create_stem", "register_stem"]
