"""Sizes and names the renderer's ground truth is expressed in.

"Left"/"right" are the signer's anatomical sides, as MediaPipe Holistic names them on an unmirrored
image: the signer's right hand appears on the image's left. Hand index 0 is the left hand.
"""

REFERENCE_HEIGHT, REFERENCE_WIDTH = 260, 210  # Phoenix frame size; geometry is defined at this size
NUM_HAND_JOINTS = 21
HANDS = ("left", "right")  # hand index 0 / 1
POSE_NAMES = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
)
# index of each POSE_NAMES entry among MediaPipe's 33 pose landmarks
POSE_MEDIAPIPE_INDEX = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24)
