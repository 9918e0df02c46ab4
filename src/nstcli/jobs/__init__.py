"""Jobs: what batch, apply and train share: finding the input images, and sharing the work out in shards."""
