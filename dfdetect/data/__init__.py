"""The data stage: raw zips and videos -> manifests -> cleaned, reduced, packed frame store and splits.

Nothing here imports Keras or TensorFlow at module level (a prep job starts in well under 2 s);
MTCNN, which is TensorFlow-based, is imported inside the face detector only.
"""
