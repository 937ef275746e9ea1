# Evaluation: one job per model on the test split (threshold chosen on validation), then the comparison.


rule evaluate:
    input:
        model=rules.train.output.model,
        test=rules.split.output.test,
        validation=rules.split.output.validation,
        store=store_files(),
    # Names and paths are dfdetect.evaluate.EvaluationPaths' (dfdetect.layout.EVALUATION_FILES).
    output:
        predictions=LAYOUT.eval_file("{model}", "predictions"),
        validation_predictions=LAYOUT.eval_file("{model}", "validation_predictions"),
        metrics=report(
            LAYOUT.eval_file("{model}", "metrics"),
            caption="../report/metrics.rst",
            category="Evaluation",
            subcategory="{model}",
            labels={"model": "{model}", "figure": "metrics"},
        ),
        roc=evaluation_plot("roc", "roc"),
        precision_recall=evaluation_plot("precision_recall", "precision_recall"),
        confusion=evaluation_plot("confusion", "confusion_matrix"),
        scores=evaluation_plot("scores", "score_histograms"),
        submission=LAYOUT.eval_file("{model}", "submission"),
    params:
        settings=lambda wildcards: config["models"][wildcards.model],
        backend=config["keras_backend"],
        evaluation=config["evaluation"],
        store_prefixes=STORE_PREFIXES,
    conda:
        "../envs/train.yaml"
    log:
        result("logs/evaluate/{model}.log"),
    benchmark:
        result("benchmarks/evaluate/{model}.tsv")
    threads: lambda wildcards: config["models"][wildcards.model]["resources"]["threads"]
    resources:
        gpu=model_resource("gpu"),
        mem_mb=model_resource("mem_mb"),
        runtime=model_resource("runtime"),
    script:
        "../workflow_scripts/evaluate.py"


rule report:
    input:
        clean=rules.clean.output.summary,
        splits=rules.split.output.summary,
        metrics=expand(rules.evaluate.output.metrics, model=MODELS),
        trained=expand(rules.train.output.info, model=MODELS),
    output:
        csv=report(
            LAYOUT.report_file("comparison.csv"),
            caption="../report/comparison.rst",
            category="Comparison",
            labels={"table": "models"},
        ),
        markdown=LAYOUT.report_file("comparison.md"),
    params:
        models=config["models"],
    conda:
        "../envs/prep.yaml"
    log:
        result("logs/report.log"),
    localrule: True
    script:
        "../workflow_scripts/report.py"
