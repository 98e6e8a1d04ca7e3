"""Features from video: MediaPipe keypoints, optical flow, frame reading, caches and overlays."""
