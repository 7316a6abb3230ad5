from . import layers  # noqa: F401  (registers the blocks into mmseg.registry.MODELS)
