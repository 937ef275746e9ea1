# Landmarks (landmarks.model: dlib68 | mtcnn5) for every packed frame of a batch, next to its frame store.
# Only train jobs whose recipe needs them (augment: dfdc_winner, fakes: sbi | both) depend on it.
LANDMARK_SETTINGS = {key: value for key, value in config["landmarks"].items() if key != "resources"}
LANDMARK_RESOURCES = config["landmarks"]["resources"]


rule landmarks:
    input:
        frames=of_data("", rules.pack.output.frames),
        mask=of_data("", rules.pack.output.mask),
        index=of_data("", rules.pack.output.index),
    output:
        landmarks=LAYOUT.store_file("{batch}", "landmarks.npy"),
        boxes=LAYOUT.store_file("{batch}", "landmark_boxes.npy"),
    log:
        result("logs/landmarks/{batch}.log"),
    benchmark:
        result("benchmarks/landmarks/{batch}.tsv")
    conda:
        "../envs/faces.yaml"
    threads: LANDMARK_RESOURCES["threads"]
    resources:
        gpu=LANDMARK_RESOURCES["gpu"],
        mem_mb=LANDMARK_RESOURCES["mem_mb"],
        runtime=LANDMARK_RESOURCES["runtime"],
    params:
        settings=LANDMARK_SETTINGS,
    script:
        "../workflow_scripts/landmarks.py"
