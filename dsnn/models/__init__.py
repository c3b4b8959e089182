"""Plain float networks; `dsnn.shift.convert_to_shift` turns their last layers into shift layers."""

from dsnn.models.resnet20 import ResNet20
from dsnn.models.small_cnn import SmallCNN

# The networks an export may name (conf/model/ option name -> class): nothing else is built
# from a file (dsnn/safe_files.py)
MODELS = {"resnet20": ResNet20, "small_cnn": SmallCNN}

__all__ = ["MODELS", "ResNet20", "SmallCNN"]
