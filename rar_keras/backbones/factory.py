"""`build_backbone`: the backbone a `RARConfig` names, sized by it."""

from datasets.schemes import get_scheme
from rar_keras.backbones.efficientnet_lite import EfficientNetLiteBackbone
from rar_keras.backbones.mobile import MobileBackbone
from rar_keras.backbones.vgg19 import VGG19Backbone


def build_backbone(config):
    """The backbone named by `config.backbone`, sized by the config."""
    common = dict(num_landmarks=_num_points(config.scheme), feature_channels=config.feature_channels,
                  heatmap_stride=config.heatmap_stride, momentum=config.batch_norm_momentum)
    if config.efficientnet_variant is not None:
        return EfficientNetLiteBackbone(**common, decoder=config.decoder, variant=config.efficientnet_variant,
                                        repeats=config.encoder_repeats)
    common["width"] = config.width
    if config.backbone == "mobile":
        return MobileBackbone(**common, decoder=config.decoder,
                              first_expansion=config.first_expansion)
    return VGG19Backbone(**common)


def _num_points(scheme_name):
    return get_scheme(scheme_name).num_points

