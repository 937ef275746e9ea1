"""Snakemake adapter: facial keypoints for every packed frame of one batch."""

from dfdetect.data.faces.detect import load_detector
from dfdetect.data.landmarks import LandmarkPaths, LandmarkSettings, landmark_store
from dfdetect.data.store import StorePaths
from dfdetect.logutil import log_to

with log_to(snakemake.log[0]) as log:
    (store,) = StorePaths.group(snakemake.input.store)
    counts = landmark_store(
        store,
        LandmarkPaths.from_mapping(dict(snakemake.output.items())),
        load_detector(),
        LandmarkSettings.from_mapping(snakemake.params.settings),
    )
    log.info(
        "batch %s: face found in %d of %d packed frames (%.1f%%); the others use the fallback geometry",
        snakemake.wildcards.batch,
        counts["found"],
        counts["frames"],
        100 * counts["share"],
    )
