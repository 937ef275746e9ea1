# Landmarks (landmarks.model: dlib68 | mtcnn5) for every packed frame of a batch, next to its frame store.
# Only train jobs whose recipe needs them (augment: dfdc_winner, fakes: sbi | both, selection: self_blended) depend on it.
LANDMARK_SETTINGS = result_settings(config["landmarks"], "landmarks")
LANDMARK_RESOURCES = config["landmarks"]["resources"]


rule landmarks:
    input:
        store=of_data(TRAINING_DATA, rules.pack.output),
    # Names and suffixes are dfdetect.data.landmarks.LandmarkPaths' (dfdetect.layout.LANDMARK_FILES).
    output:
        multiext(LAYOUT.store_prefix("{batch}"), **LANDMARK_FILES),
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
