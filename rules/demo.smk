# Demo batches in exactly the DFDC face-batch format (only when demo.enabled).
from dfdetect.layout import demo_batch_index


rule demo:
    output:
        LAYOUT.demo_zip("{batch}"),
    params:
        batch_index=lambda wildcards: demo_batch_index(wildcards.batch),
        spec={key: value for key, value in config["demo"].items() if key not in ("enabled", "batches")},
    conda:
        "../envs/prep.yaml"
    log:
        result("logs/demo/{batch}.log"),
    benchmark:
        result("benchmarks/demo/{batch}.tsv")
    script:
        "../workflow_scripts/demo.py"
