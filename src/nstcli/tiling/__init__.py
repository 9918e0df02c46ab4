"""Tiles as a way of running one scale: images larger than memory allows, in overlapping tiles."""
