"""dfdetect: deepfake detection on the DFDC data as a reproducible Snakemake workflow.

Importing the package is cheap: it never imports TensorFlow or Keras (data-prep jobs rely on
that); the modules that need Keras import it themselves.
"""

__version__ = "0.1.0"
