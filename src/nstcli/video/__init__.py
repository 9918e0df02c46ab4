"""Video: frames in and out, optical flow, and the frame-by-frame loop around one stylisation."""
