"""Faces in video: ``decode`` (frames from mp4, read ahead), ``detect`` (MTCNN boxes and square
crops) and ``extract`` (raw DFDC video parts -> face batches, the extract_faces rule).

``dfdetect predict`` uses ``decode`` and ``detect`` for mp4 input; the landmarks job uses ``detect``'s detector.
"""
