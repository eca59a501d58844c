"""ganforge: GANs from the literature, trained, scored and exported reproducibly."""

__version__ = "0.1.0"
