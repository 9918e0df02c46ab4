"""Fast style networks: a feed-forward image transformation network trained once per style, then
applied in one pass (Johnson, Alahi & Fei-Fei 2016; Ulyanov et al. 2017 for instance norm).

- `network`: the transformation network (reflection padding, instance norm, resize-convolution).
- `modelfile`: its file format (safetensors tensors + a JSON header; never a pickle).
- `dataset`: a folder of photos as random crops.
- `train`: the training loop (nstcli's own loss terms on the frozen VGG19 as the perceptual loss),
  with checkpoints, previews and exact resume.
- `apply`: one image, or many (resumable, shardable, tiled when large).
- `export`: ONNX.
- `video`: a clip through the network, stabilised with the optical flow of `nstcli.video.flow`.
"""
