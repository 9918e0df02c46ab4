"""The VGG19: input conventions, layer names, weights sources and formats, the feature extractor, memory estimates."""
