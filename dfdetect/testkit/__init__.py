"""Small crafted inputs for the tests and the benchmarks, built offline and importable by both.

- ``batches``: face batches in the exact DFDC layout whose pixels encode their origin;
- ``videos``: mp4s with real faces (pictures that ship in installed packages) at known places;
- ``dryrun``: what a Snakemake (dry) run prints, parsed into jobs and wildcards.

Nothing here runs in the workflow; the tests' own helpers (``tests/helpers``) build on it.
"""
