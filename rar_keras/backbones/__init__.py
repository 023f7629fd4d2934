"""Backbones: image in, (SIP features, fine features, one heatmap per landmark) out.

`factory.build_backbone` picks one by the config; `imagenet` reads EfficientNet-Lite0's and
-Lite2's ImageNet weights without TensorFlow (this package's `__init__` stays light for that).
"""
