"""Images as files and tensors: reading, writing, colour, contact sheets."""
