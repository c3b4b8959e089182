"""Plain float networks; `dsnn.shift.convert_to_shift` turns their last layers into shift layers."""

from dsnn.models.resnet20 import ResNet20
from dsnn.models.small_cnn import SmallCNN

__all__ = ["ResNet20", "SmallCNN"]
