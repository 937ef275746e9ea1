# Demo batches in exactly the DFDC face-batch format: the training data (demo.enabled) and the
# evaluation sets that name a `demo:` (under sets/NAME/, with their own seed and manipulations).
from dfdetect.sources import demo_spec
from dfdetect.layout import demo_batch_index


rule demo:
    output:
        LAYOUT.demo_zip("{batch}", data="{data}"),
    log:
        result("logs/{data}demo/{batch}.log"),
    benchmark:
        result("benchmarks/{data}demo/{batch}.tsv")
    conda:
        "../envs/prep.yaml"
    params:
        batch_index=lambda wildcards: demo_batch_index(wildcards.batch),
        spec=lambda wildcards: demo_spec(config, wildcards.data),
    script:
        "../workflow_scripts/demo.py"
