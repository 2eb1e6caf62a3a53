"""The classifier: a pretrained encoder with a classification head, and its Lightning wrapper."""
