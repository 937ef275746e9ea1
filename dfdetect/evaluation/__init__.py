"""The evaluation stage: scoring, metrics, robustness, the comparison report and ``dfdetect predict``."""
