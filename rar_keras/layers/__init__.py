"""The custom layers of the RAR pipeline."""

from rar_keras.layers.attentive_refiner import AttentiveRefiner
from rar_keras.layers.heatmap_decoder import HeatmapDecoder
from rar_keras.layers.heatmap_shape_fit import HeatmapShapeFit
from rar_keras.layers.occluder_mask_head import OccluderMaskHead
from rar_keras.layers.robust_init import RobustShapeInit
from rar_keras.layers.shape_posterior import ShapePosterior
from rar_keras.layers.shape_indexed_pooling import ShapeIndexedPooling
from rar_keras.layers.visibility_head import VisibilityHead

__all__ = ["AttentiveRefiner", "HeatmapDecoder", "HeatmapShapeFit", "OccluderMaskHead", "RobustShapeInit",
           "ShapeIndexedPooling", "ShapePosterior", "VisibilityHead"]
