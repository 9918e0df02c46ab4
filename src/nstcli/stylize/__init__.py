"""Stylising images: one image, its scales, styles, masks, reconstructions and batches."""
