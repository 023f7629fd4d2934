"""rar-keras: robust facial landmarks with Recurrent Attentive-Refinement networks."""

from rar_keras import _datasets_check  # noqa: F401

__version__ = "0.1.0"
