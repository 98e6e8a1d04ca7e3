"""The synthetic signer renderer: draws a signing person with OpenCV and returns the ground truth.

The figure is deliberately human-like (a shaded face, clothed torso and arms, hands with five
articulated fingers in MediaPipe's 21-joint layout) because the pipeline extracts keypoints with
real MediaPipe Holistic: a figure MediaPipe does not recognise as a person yields no hands. And it
is deliberately *not* clean: fast signers, motion blur over one frame of exposure, hands crossing
the face and each other, dark studio clothing and JPEG artefacts make MediaPipe miss hands about
as often as it does on broadcast sign-language video, while the RGB frames and optical flow still
show the movement - so that the modalities complement each other.

Modules, in the order a frame is made:
    signer   appearance and habits (speed, coarticulation, handedness) of one signer
    motion   per-frame states of both hands over a sentence (signs, transitions, coarticulation)
    hands    21-joint hand kinematics, placement and drawing
    body     body measurements, sign locations, torso, head and arms
    canvas   drawing primitives in reference pixels on a supersampled image
    camera   exposure (motion blur, interlacing), optical blur, sensor noise, JPEG compression
    video    whole videos and their ground truth (joints, visibility, per-frame miss conditions)

Coordinates. Images are not mirrored and the signer faces the camera, so the signer's RIGHT hand
appears on the image's LEFT. "Left"/"right" always mean the signer's anatomical side, which is how
MediaPipe Holistic names `left_hand_landmarks` / `right_hand_landmarks` and the pose landmarks.
Hand index 0 is the left hand, 1 the right hand. Motion is planned per hand in a *side-relative*
frame (lateral distance from the body's midline, positive outward; image y; wrist angles mirrored
for the left hand), so a symmetric two-handed sign, or a left-handed signer, is the same plan
applied to the other hand.
"""

from signkd.data.render.body import Body
from signkd.data.render.camera import RenderParams
from signkd.data.render.hands import HandGeometry, PosedHand, hand_model, pose_hand
from signkd.data.render.motion import MotionPlan, plan_motion
from signkd.data.render.signer import Signer, make_signer
from signkd.data.render.skeleton import (
    HANDS,
    NUM_HAND_JOINTS,
    POSE_MEDIAPIPE_INDEX,
    POSE_NAMES,
    REFERENCE_HEIGHT,
    REFERENCE_WIDTH,
)
from signkd.data.render.video import RenderedVideo, render_video

__all__ = [
    "HANDS",
    "NUM_HAND_JOINTS",
    "POSE_MEDIAPIPE_INDEX",
    "POSE_NAMES",
    "REFERENCE_HEIGHT",
    "REFERENCE_WIDTH",
    "Body",
    "HandGeometry",
    "MotionPlan",
    "PosedHand",
    "RenderParams",
    "RenderedVideo",
    "Signer",
    "hand_model",
    "make_signer",
    "plan_motion",
    "pose_hand",
    "render_video",
]
