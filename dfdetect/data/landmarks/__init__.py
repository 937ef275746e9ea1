"""Face landmarks per packed frame, and the face regions built from them.

The ``landmarks`` rule finds the main face's landmarks in every filled slot of a batch's frame
store with the model ``landmarks.model`` names, and writes, next to the store (``store/{batch}``):

- ``{prefix}.landmarks.npy``: float32 (videos, slots, P, 2), the model's P points as (x, y) in
  the store's pixel coordinates; NaN where the slot is empty or no face was found;
- ``{prefix}.landmark_boxes.npy``: float32 (videos, slots, 5), the face box the points belong to
  (x1, y1, x2, y2, store pixels) and the detector's score; NaN likewise.

Models:

- ``dlib68`` (the default): dlib's 68-point shape predictor (the iBUG 300-W points: jaw 0-16,
  brows 17-26, nose 27-35, eyes 36-47, mouth 48-67), the points SBI and the DFDC winner use.
  dlib's HOG face detector places the box on the crop (``Dlib68Landmarks``); the predictor file
  ships in the PyPI package ``face-recognition-models``. It was trained on iBUG 300-W, whose
  terms exclude commercial use: a commercial user picks ``mtcnn5`` or brings a predictor of
  their own (``predictor`` setting).
- ``mtcnn5``: MTCNN's five keypoints (eyes, nose, mouth corners), ``KEYPOINTS``.

A frame without a face never fails the batch. Everything built on landmarks has a **fallback**
for such frames: the DFDC face crops are face-centred, so a frame without landmarks uses a fixed
crop-centred face geometry (``fallback_keypoints`` and ``face_ellipse``: an upright ellipse
around the crop's centre, covering brows to chin, with five keypoints where a centred face has
them). The job's log and each model's ``train.json`` report the share of frames that need it.

The package: ``geometry`` (points, fallback, face regions: what training draws), ``detect`` (the
settings and the two models: dlib, mtcnn and TensorFlow are imported only there, inside the
landmarks job) and ``files`` (writing and reading the landmarks files).
"""
