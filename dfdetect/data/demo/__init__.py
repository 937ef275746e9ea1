"""Deterministic demo face batches in exactly the DFDC face-batch format, learnable by a detector.

Each batch is a ``deepfake-detection-faces-part-{i}-{j}.zip`` with ``metadata.csv`` and one folder
of face crops per video, shaped like the real data:

- families: each real video present has 1 to 5 fakes; most fakes come from originals that are
  not in the data (rendered in memory to make the fakes, never written); about 87% FAKE;
- frame sets: most videos hold 250-300 faces out of 300 frame slots with a few gaps, some hold
  under 200 (long face-less stretches), a few two-actor videos hold about 600 (``{n}_2.png`` on
  most frames), some have a handful of ``{n}_2.png`` frames (a bystander);
- faces: procedural identities (skin tone, face shape, eyes, brows, nose, mouth, hair, beard,
  glasses, background, skin texture) rendered once per identity and warped per frame (small
  smooth shifts, zoom and roll), with lighting flicker and per-frame sensor noise;
- fakes: made from the original's own frames by one of ``MANIPULATIONS`` per fake video (the
  spec's ``manipulations``, assigned evenly over a batch's fakes in a seeded order), each leaving
  a different trace; the strength varies per fake video:

  - ``swap`` (the default): a donor identity is
    rendered aligned to the target face, at reduced resolution and upsampled (resampling blur),
    only partly colour-corrected (skin tone mismatch), and blended in through a
    Gaussian-feathered elliptical mask over the inner face;
  - ``reenact``: the same person with another expression (eyes, brows, mouth), re-rendered at
    reduced resolution, moving between two expressions as if talking, warped with a small
    per-frame jitter and blended in only over the eye and mouth regions: identity unchanged;
  - ``gan_upsample``: the inner face regenerated from a low-resolution copy of itself through
    one or two transposed-convolution-like x2 upsamplings whose even and odd output phases have
    unequal gains (checkerboard artefacts), without the sensor noise, blended over the inner face;
  - ``colour``: the inner face colour-transferred towards another skin tone (per-channel gain
    and shift), pixels otherwise untouched, blended through the feathered inner-face mask.

  ``metadata.csv`` gets a fifth column, ``manipulation``: the kind for FAKE rows, empty for REAL.
- REAL share: each batch's share of REAL videos is drawn from ``real_share`` (10-15% by
  default, as in DFDC; up to 50%, since every REAL video present has at least one fake).

Everything is a function of ``(batch_index, DemoSpec)``: rerunning gives byte-identical zips.
No TensorFlow or Keras here (data-prep modules start fast). The package's modules, in the
order a batch is made: ``spec`` (settings), ``plan`` (families, names, scenes), ``render`` (the real
videos' faces), ``manipulations`` (the fakes), ``write`` (the zip).
"""

from dfdetect.data.demo.plan import BatchPlan, FamilyPlan, plan_batch, planned_videos
from dfdetect.data.demo.spec import MANIPULATIONS, SCENES, DemoBatchSummary, DemoSpec
from dfdetect.data.demo.write import write_demo_batch

__all__ = [
    "DemoSpec",
    "DemoBatchSummary",
    "FamilyPlan",
    "BatchPlan",
    "SCENES",
    "MANIPULATIONS",
    "plan_batch",
    "planned_videos",
    "write_demo_batch",
]
