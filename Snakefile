# dfdetect: DFDC face batches -> manifests -> clean/reduce/pack/split -> trained models -> reports.
# Thin on purpose: the logic lives in the dfdetect package, the stages in rules/*.smk.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


# The start page of `snakemake --report`: what the workflow does and how to read the report.
report: "report/workflow.rst"


# common.smk validates the config against dfdetect/config.schema.yaml first (a short error: the
# message and the key, not the whole schema), then checks it and takes the results_dir lock.
include: "rules/common.smk"
include: "rules/demo.smk"
include: "rules/faces.smk"
include: "rules/ingest.smk"
include: "rules/prepare.smk"
include: "rules/landmarks.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"


rule all:
    default_target: True
    input:
        all_targets(),
