# Face extraction: each raw DFDC video part in raw_video_dir (dfdc_train_part_{part}.zip, mp4 files
# and metadata.json) becomes a face batch under {results}/faces, which ingest then reads like a
# downloaded batch (common.smk's batch_zip points batch {part}-0 at it).
from dfdetect.sources import raw_video_parts

RAW_VIDEO_PARTS = {data: raw_video_parts(config, data) for data in DATA_BATCHES}  # data -> part number -> raw zip
FACE_SETTINGS = result_settings(config["faces"], "faces")
FACE_RESOURCES = config["faces"]["resources"]


rule extract_faces:
    input:
        lambda wildcards: RAW_VIDEO_PARTS[wildcards.data][wildcards.part],
    output:
        batch=LAYOUT.faces_zip("{part}", data="{data}"),
        report=report(
            LAYOUT.faces_report("{part}", data="{data}"),
            caption="../report/faces.rst",
            category="Data",
            subcategory="Face extraction",
            labels=data_labels("face extraction report, part {part}"),
        ),
    log:
        result("logs/{data}extract_faces/{part}.log"),
    benchmark:
        result("benchmarks/{data}extract_faces/{part}.tsv")
    wildcard_constraints:
        part=r"\d+",
    conda:
        "../envs/faces.yaml"
    threads: FACE_RESOURCES["threads"]
    resources:
        gpu=FACE_RESOURCES["gpu"],
        mem_mb=FACE_RESOURCES["mem_mb"],
        runtime=FACE_RESOURCES["runtime"],
    params:
        settings=FACE_SETTINGS,
    script:
        "../workflow_scripts/extract_faces.py"
