"""Deep shift neural networks (DeepShift-Q / DeepShift-PS) tuned for accuracy and energy."""
