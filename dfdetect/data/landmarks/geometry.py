"""Landmark geometry (numpy and OpenCV only): the points of each model, the fallback face of a
frame without landmarks, mirroring, the forehead, and the face regions SBI and the DFDC winner draw."""

from __future__ import annotations

from typing import Iterable

import numpy as np

MODELS = {"dlib68": 68, "mtcnn5": 5}  # landmarks.model -> points per face


KEYPOINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")  # MTCNN's order


LEFT_EYE, RIGHT_EYE, NOSE, MOUTH_LEFT, MOUTH_RIGHT = range(5)


# The 68 points (iBUG 300-W order, as dlib returns them); "left" is the left of the image.
JAW, BROWS = np.arange(0, 17), np.arange(17, 27)


LEFT_EYE_68, RIGHT_EYE_68 = np.arange(36, 42), np.arange(42, 48)


NOSE_TIP_68, MOUTH_LEFT_68, MOUTH_RIGHT_68, CHIN_68 = 30, 48, 54, 8


# The fallback geometry, as shares of the crop side (x, y): a face centred in its crop, the way
# the DFDC face crops (and the demo's) are cut. The ellipse spans brows to chin and cheek to cheek.
FALLBACK_KEYPOINTS = np.array([(0.36, 0.42), (0.64, 0.42), (0.50, 0.57), (0.39, 0.72), (0.61, 0.72)], np.float32)


FALLBACK_ELLIPSE = {"centre": (0.50, 0.52), "radii": (0.34, 0.42)}


def fallback_keypoints(size: int) -> np.ndarray:
    """(5, 2) float32 keypoints of a crop-centred face in a ``size`` x ``size`` crop."""
    return FALLBACK_KEYPOINTS * np.float32(size)


def has_face(keypoints: np.ndarray) -> np.ndarray:
    """True where a (..., P, 2) keypoint array holds a detected face (no NaN)."""
    return ~np.isnan(keypoints).any(axis=(-1, -2))


def five_points(keypoints: np.ndarray) -> np.ndarray:
    """MTCNN's five keypoints (eye centres, nose tip, mouth corners) from 5 or 68 points."""
    points = np.asarray(keypoints, dtype=np.float32)
    if points.shape[-2] == 5:
        return points
    return np.stack(
        [
            points[..., LEFT_EYE_68, :].mean(axis=-2),
            points[..., RIGHT_EYE_68, :].mean(axis=-2),
            points[..., NOSE_TIP_68, :],
            points[..., MOUTH_LEFT_68, :],
            points[..., MOUTH_RIGHT_68, :],
        ],
        axis=-2,
    )


def _mirror_order_68() -> np.ndarray:
    """Index of each point's mirror image among the 68 (SBI's hflip, src/utils/sbi.py:201-228)."""
    order = np.arange(68)
    for first, last in ((0, 16), (17, 26), (31, 35), (48, 54), (55, 59), (60, 64), (65, 67)):
        order[first : last + 1] = order[first : last + 1][::-1]  # each run reverses in place
    order[36:40], order[40:42] = np.arange(45, 41, -1), (47, 46)  # the eyes swap sides
    order[42:46], order[46:48] = np.arange(39, 35, -1), (41, 40)
    return order


MIRROR_ORDER = {5: np.array([RIGHT_EYE, LEFT_EYE, NOSE, MOUTH_RIGHT, MOUTH_LEFT]), 68: _mirror_order_68()}


def mirror_keypoints(keypoints: np.ndarray, width: int) -> np.ndarray:
    """The points of the horizontally flipped frame (``image[:, ::-1]``), relabelled left <-> right."""
    points = np.asarray(keypoints, dtype=np.float32)
    mirrored = points[..., MIRROR_ORDER[points.shape[-2]], :].copy()
    mirrored[..., 0] = (width - 1) - mirrored[..., 0]
    return mirrored


def face_ellipse(size: int) -> np.ndarray:
    """The fallback face region: uint8 (size, size) mask, 1 inside a crop-centred ellipse."""
    import cv2

    mask = np.zeros((size, size), dtype=np.uint8)
    (cx, cy), (rx, ry) = FALLBACK_ELLIPSE["centre"], FALLBACK_ELLIPSE["radii"]
    cv2.ellipse(
        mask,
        (round(cx * size), round(cy * size)),
        (max(1, round(rx * size)), max(1, round(ry * size))),
        0,
        0,
        360,
        1,
        thickness=-1,
    )
    return mask


def face_outline(keypoints: np.ndarray) -> np.ndarray:
    """Points around the whole face from its five keypoints, (9, 2) float32.

    Five points cover only eyes to mouth; self-blending needs the face from brows to chin. With
    ``across`` the vector from the left to the right eye and ``down`` from the eyes' midpoint to
    the mouth's, the outline adds the brows (eyes moved up by 0.55 ``down`` and out by 0.3
    ``across``), the temples and cheeks (eyes out by 0.6 ``across``, down by 0.35 ``down``),
    the jaw (mouth corners out by 0.35 ``across``, down by 0.35 ``down``) and the chin (mouth
    midpoint down by 0.75 ``down``): about the region of the 68-point jaw line plus brows.
    """
    points = np.asarray(keypoints, dtype=np.float32)
    left_eye, right_eye = points[LEFT_EYE], points[RIGHT_EYE]
    mouth_left, mouth_right = points[MOUTH_LEFT], points[MOUTH_RIGHT]
    across = right_eye - left_eye
    down = (mouth_left + mouth_right) / 2 - (left_eye + right_eye) / 2
    outline = [
        left_eye - 0.3 * across - 0.55 * down,
        right_eye + 0.3 * across - 0.55 * down,
        left_eye - 0.6 * across + 0.35 * down,
        right_eye + 0.6 * across + 0.35 * down,
        mouth_left - 0.35 * across + 0.35 * down,
        mouth_right + 0.35 * across + 0.35 * down,
        (mouth_left + mouth_right) / 2 + 0.75 * down,
        (left_eye + right_eye) / 2 - 0.7 * down,  # forehead centre
        points[NOSE],
    ]
    return np.array(outline, dtype=np.float32)


# SBI blends inside the hull of the 81-point dlib model (codeniko's: the 68 plus 13 on the forehead
# hairline, src/utils/sbi.py:162-172, README step 2). No 81-point model ships offline, so the 13 are
# drawn here from the 68: an arc over the brows from temple to temple, as high above the brows'
# centre as FOREHEAD_HEIGHT of the brows-to-chin distance (a face's forehead is about a third of
# its height, hairline to chin, so about half of brows-to-chin).
FOREHEAD_POINTS = 13


FOREHEAD_HEIGHT = 0.5


def forehead_points(points68: np.ndarray) -> np.ndarray:
    """(13, 2) float32 points on the forehead, left to right, from a face's 68 points."""
    points = np.asarray(points68, dtype=np.float32)
    brow_centre = points[BROWS].mean(axis=0)
    up = brow_centre - points[CHIN_68]
    height = float(np.linalg.norm(up))
    if height == 0:
        return np.repeat(brow_centre[None], FOREHEAD_POINTS, axis=0)
    up /= height
    across = np.array([-up[1], up[0]], dtype=np.float32)  # perpendicular, pointing to the image's right
    half_width = float(np.abs((points[JAW[-1]] - points[JAW[0]]) @ across)) / 2
    angles = np.linspace(np.pi, 0, FOREHEAD_POINTS)  # from the left temple over the top to the right
    return (
        brow_centre
        + np.cos(angles)[:, None] * half_width * across
        + np.sin(angles)[:, None] * FOREHEAD_HEIGHT * height * up
    ).astype(np.float32)


def with_forehead(points68: np.ndarray) -> np.ndarray:
    """(81, 2): the 68 points and the 13 forehead points (the 81-point model's layout after
    SBI's reorder_landmark, src/utils/sbi.py:189-194)."""
    return np.concatenate([np.asarray(points68, dtype=np.float32), forehead_points(points68)])


def _fill_hulls(size: int, groups: Iterable[np.ndarray]) -> np.ndarray:
    import cv2

    mask = np.zeros((size, size), dtype=np.uint8)
    for group in groups:
        cv2.fillConvexPoly(mask, cv2.convexHull(np.round(group).astype(np.int32)), 1)
    return mask


def _components(points: np.ndarray) -> list[np.ndarray]:
    """The eight part hulls of Face X-ray's ``components`` mask (DeepFakeMask.py:108-122)."""
    p = points
    return [
        np.concatenate([p[0:9], p[17:18]]),  # right jaw (of the image's left)
        np.concatenate([p[8:17], p[26:27]]),
        np.concatenate([p[17:20], p[8:9]]),  # cheeks
        np.concatenate([p[24:27], p[8:9]]),
        np.concatenate([p[19:25], p[8:9]]),  # nose ridge
        np.concatenate([p[17:22], p[27:28], p[31:36], p[8:9]]),  # eyes
        np.concatenate([p[22:27], p[27:28], p[31:36], p[8:9]]),
        np.concatenate([p[27:31], p[31:36]]),  # nose
    ]


def _raised_brows(points: np.ndarray) -> np.ndarray:
    """Face X-ray's ``extended`` mask: brows moved up by half their distance to the upper eyelids
    (DeepFakeMask.py:137-156)."""
    p = np.asarray(points[:68], dtype=np.float32).copy()
    outer_left = (p[36] + (p[36] + p[0]) / 2) / 2
    outer_right = (p[45] + (p[16] + p[45]) / 2) / 2
    lids_left = np.stack([outer_left, p[36], p[37], p[38], p[39]])
    lids_right = np.stack([p[42], p[43], p[44], p[45], outer_right])
    p[17:22] += (p[17:22] - lids_left) / 2
    p[22:27] += (p[22:27] - lids_right) / 2
    return p


# SBI draws one of Face X-ray's four mask types per fake (src/utils/sbi.py:166-168 through
# bi_online_generation.py:24-37 of AlgoHunt/Face-Xray, the variant SBI's README recommends):
HULL_VARIANTS = ("dfl_full", "extended", "components", "facehull")


def hull_variant(points: np.ndarray, size: int, variant: str) -> np.ndarray:
    """uint8 (size, size) mask of one of Face X-ray's mask types on 68 (or 81) points."""
    p = np.asarray(points, dtype=np.float32)
    if variant == "facehull":  # the hull of every point (DeepFakeMask.py:174-181)
        return _fill_hulls(size, [p])
    if variant == "dfl_full":  # jaw with mouth, nose ridge, brows with eyes (DeepFakeMask.py:84-95)
        return _fill_hulls(
            size,
            [
                np.concatenate([p[0:17], p[48:68], p[0:1], p[8:9], p[16:17]]),
                np.concatenate([p[27:31], p[33:34]]),
                np.concatenate([p[17:27], p[0:1], p[27:28], p[16:17], p[33:34]]),
            ],
        )
    if variant == "components":
        return _fill_hulls(size, _components(p))
    if variant == "extended":
        return _fill_hulls(size, _components(_raised_brows(p)))
    raise ValueError(f"unknown hull variant {variant!r}; expected one of {', '.join(HULL_VARIANTS)}")


def face_hull(keypoints: np.ndarray | None, size: int) -> np.ndarray:
    """uint8 (size, size) mask of the face: for 68 points the hull of them and the forehead arc
    (SBI's 81-point hull), for five the hull of ``face_outline``; the crop-centred ellipse
    (``face_ellipse``) when ``keypoints`` is None or holds NaN, or the hull is empty."""
    if keypoints is None or not has_face(np.asarray(keypoints)):
        return face_ellipse(size)
    points = np.asarray(keypoints, dtype=np.float32)
    outline = with_forehead(points) if points.shape[0] == 68 else face_outline(points)
    mask = _fill_hulls(size, [outline])
    if not mask.any():  # degenerate keypoints (all in one spot, or off the crop)
        return face_ellipse(size)
    return mask


def sbi_region(keypoints: np.ndarray | None, size: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """SBI's face region for one fake, and its kind: with 68 points, 81 points (the forehead arc
    added) or, with p 0.25, the 68 alone (src/utils/sbi.py:164-165), under one of the four
    ``HULL_VARIANTS`` drawn uniformly; with five points the ``face_outline`` hull ("outline5");
    without landmarks the fallback ellipse ("ellipse")."""
    if keypoints is None or not has_face(np.asarray(keypoints)):
        return face_ellipse(size), "ellipse"
    points = np.asarray(keypoints, dtype=np.float32)
    if points.shape[0] != 68:
        return face_hull(points, size), "outline5"
    if rng.random() >= 0.25:
        points = with_forehead(points)
    variant = HULL_VARIANTS[int(rng.integers(len(HULL_VARIANTS)))]
    mask = hull_variant(points, size, variant)
    if not mask.any():
        return face_ellipse(size), "ellipse"
    return mask, variant


def face_box(keypoints: np.ndarray | None, size: int) -> np.ndarray:
    """(x1, y1, x2, y2) of the face: the landmarks' extent (68 points: jaw, brows and chin), or the
    fallback ellipse's box."""
    if keypoints is not None and np.asarray(keypoints).shape[0] == 68 and has_face(np.asarray(keypoints)):
        points = np.asarray(keypoints, dtype=np.float32)
        return np.array([*points.min(axis=0), *points.max(axis=0)], dtype=np.float32)
    (cx, cy), (rx, ry) = FALLBACK_ELLIPSE["centre"], FALLBACK_ELLIPSE["radii"]
    return np.array([cx - rx, cy - ry, cx + rx, cy + ry], dtype=np.float32) * np.float32(size)


def jaw_and_brows(points68: np.ndarray) -> np.ndarray:
    """The polygon of the jaw line and the brows (right to left), the DFDC winner's face outline
    for blackout_convex_hull (training/datasets/classifier_dataset.py:59)."""
    points = np.asarray(points68, dtype=np.float32)
    return points[[*range(17), *range(26, 16, -1)]]
