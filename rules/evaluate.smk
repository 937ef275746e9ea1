from dfdetect.config import results_config
from dfdetect.evaluation.scoring import scoring_settings
from dfdetect.layout import model_result_files

# Evaluation: one job per model run on the test split (threshold and calibration fitted on validation),
# one per model run and evaluation set, one per model under perturbations (robustness, run 0 only),
# ensembles combined from their members' evaluations (no training), then the comparison.

# Only these evaluation keys change a score; adding a set (evaluation.sets) reruns no other job.
SCORING = {key: config["evaluation"][key] for key in ("aggregate", "bootstrap", "seed", "batch_size")}
CALIBRATION = {key: config["evaluation"][key] for key in ("calibration", "calibration_bins")}
ROBUSTNESS = config["evaluation"]["robustness"]
REPORT_FILES = model_result_files(
    config["models"], LAYOUT, SETS, ROBUSTNESS, {name: ensemble_runs(config, name) for name in ENSEMBLES}
)


# Beside each model: how evaluation scores it (frames, aggregation, image size, backend), which
# `dfdetect predict` applies without a config. The same config values as the evaluate rule's.
rule scoring:
    input:
        model=rules.train.output.model,
    output:
        LAYOUT.scoring_file("{model}", "{run}"),
    log:
        result("logs/scoring/{model}{run}.log"),
    localrule: True
    conda:
        "../envs/prep.yaml"
    params:
        settings=scoring_settings(config),
    script:
        "../workflow_scripts/scoring.py"


rule evaluate:
    input:
        model=rules.train.output.model,
        test=rules.split.output.test,
        validation=rules.split.output.validation,
        store=store_files(),
    # Names and paths are dfdetect.evaluation.evaluate.EvaluationPaths' (dfdetect.layout.EVALUATION_FILES),
    # then the calibration fitted on validation, next to the model.
    output:
        predictions=LAYOUT.eval_file("{model}", "predictions", "{run}"),
        validation_predictions=LAYOUT.eval_file("{model}", "validation_predictions", "{run}"),
        metrics=report(
            LAYOUT.eval_file("{model}", "metrics", "{run}"),
            caption="../report/metrics.rst",
            category="Evaluation",
            subcategory="{model}",
            labels=run_labels(model="{model}", run="{run}", figure="metrics"),
        ),
        roc=evaluation_plot("roc", "roc"),
        precision_recall=evaluation_plot("precision_recall", "precision_recall"),
        confusion=evaluation_plot("confusion", "confusion_matrix"),
        scores=evaluation_plot("scores", "score_histograms"),
        reliability=evaluation_plot("reliability", "reliability"),
        submission=LAYOUT.eval_file("{model}", "submission", "{run}"),
        calibration=LAYOUT.calibration_file("{model}", "{run}"),
    log:
        result("logs/evaluate/{model}{run}.log"),
    benchmark:
        result("benchmarks/evaluate/{model}{run}.tsv")
    conda:
        "../envs/train.yaml"
    threads: lambda wildcards: config["models"][wildcards.model]["resources"]["threads"]
    resources:
        gpu=model_resource("gpu"),
        mem_mb=model_resource("mem_mb"),
        runtime=model_resource("runtime"),
    params:
        settings=model_settings,
        backend=config["keras_backend"],
        evaluation=SCORING,
        calibration=CALIBRATION,
    script:
        "../workflow_scripts/evaluate.py"


rule evaluate_set:
    input:
        model=rules.train.output.model,
        videos=rules.set_videos.output[0],
        validation_predictions=rules.evaluate.output.validation_predictions,
        calibration=rules.evaluate.output.calibration,
        store=lambda wildcards: store_files(LAYOUT.set_data(wildcards.set)),
    # Names and paths are dfdetect.evaluation.evaluate.SetEvaluationPaths' (dfdetect.layout.SET_EVALUATION_FILES).
    output:
        predictions=LAYOUT.set_eval_file("{model}", "{set}", "predictions", "{run}"),
        metrics=report(
            LAYOUT.set_eval_file("{model}", "{set}", "metrics", "{run}"),
            caption="../report/set_metrics.rst",
            category="Evaluation sets",
            subcategory="{set}",
            labels=run_labels(model="{model}", run="{run}", set="{set}", figure="metrics"),
        ),
        roc=set_plot("roc", "roc"),
        precision_recall=set_plot("precision_recall", "precision_recall"),
        confusion=set_plot("confusion", "confusion_matrix"),
        scores=set_plot("scores", "score_histograms"),
    log:
        result("logs/evaluate_set/{model}{run}/{set}.log"),
    benchmark:
        result("benchmarks/evaluate_set/{model}{run}/{set}.tsv")
    conda:
        "../envs/train.yaml"
    threads: lambda wildcards: config["models"][wildcards.model]["resources"]["threads"]
    resources:
        gpu=model_resource("gpu"),
        mem_mb=model_resource("mem_mb"),
        runtime=model_resource("runtime"),
    params:
        settings=model_settings,
        backend=config["keras_backend"],
        evaluation=SCORING,
        calibration=CALIBRATION,
    script:
        "../workflow_scripts/evaluate_set.py"


# Robustness is measured on run 0, the model users deploy (a model's other runs differ in their seed only).
rule robustness:
    input:
        model=first_run(rules.train.output.model),
        test=rules.split.output.test,
        store=store_files(),
    # Names and paths are dfdetect.evaluation.robustness.RobustnessPaths' (dfdetect.layout.ROBUSTNESS_FILES).
    output:
        table=report(
            LAYOUT.robustness_file("{model}", "table"),
            caption="../report/robustness_table.rst",
            category="Robustness",
            subcategory="{model}",
            labels={"model": "{model}", "table": "robustness"},
        ),
        plot=report(
            LAYOUT.robustness_file("{model}", "plot"),
            caption="../report/robustness.rst",
            category="Robustness",
            subcategory="{model}",
            labels={"model": "{model}", "figure": "robustness"},
        ),
    log:
        result("logs/robustness/{model}.log"),
    benchmark:
        result("benchmarks/robustness/{model}.tsv")
    conda:
        "../envs/train.yaml"
    threads: lambda wildcards: config["models"][wildcards.model]["resources"]["threads"]
    resources:
        gpu=model_resource("gpu"),
        mem_mb=model_resource("mem_mb"),
        runtime=model_resource("runtime"),
    params:
        backend=config["keras_backend"],
        evaluation=SCORING,
    script:
        "../workflow_scripts/robustness.py"


# An ensemble: its members' evaluations of the same run combined (dfdetect.evaluation.ensemble), no training.
rule ensemble:
    input:
        predictions=member_inputs(rules.evaluate.output.predictions),
        validation_predictions=member_inputs(rules.evaluate.output.validation_predictions),
    # Names and paths are dfdetect.evaluation.evaluate.EvaluationPaths' (dfdetect.layout.EVALUATION_FILES).
    output:
        predictions=LAYOUT.eval_file("{ensemble}", "predictions", "{run}"),
        validation_predictions=LAYOUT.eval_file("{ensemble}", "validation_predictions", "{run}"),
        metrics=report(
            LAYOUT.eval_file("{ensemble}", "metrics", "{run}"),
            caption="../report/metrics.rst",
            category="Evaluation",
            subcategory="{ensemble}",
            labels=run_labels(model="{ensemble}", run="{run}", figure="metrics"),
        ),
        roc=evaluation_plot("roc", "roc", "{ensemble}"),
        precision_recall=evaluation_plot("precision_recall", "precision_recall", "{ensemble}"),
        confusion=evaluation_plot("confusion", "confusion_matrix", "{ensemble}"),
        scores=evaluation_plot("scores", "score_histograms", "{ensemble}"),
        reliability=evaluation_plot("reliability", "reliability", "{ensemble}"),
        submission=LAYOUT.eval_file("{ensemble}", "submission", "{run}"),
    log:
        result("logs/ensemble/{ensemble}{run}.log"),
    benchmark:
        result("benchmarks/ensemble/{ensemble}{run}.tsv")
    localrule: True
    conda:
        "../envs/prep.yaml"
    params:
        settings=lambda wildcards: config["ensembles"][wildcards.ensemble],
        evaluation=SCORING,
        calibration=CALIBRATION,
        predictions=member_outputs(rules.evaluate.output.predictions),
        validation_predictions=member_outputs(rules.evaluate.output.validation_predictions),
    script:
        "../workflow_scripts/ensemble.py"


rule ensemble_set:
    input:
        predictions=member_inputs(rules.evaluate_set.output.predictions),
        validation_predictions=rules.ensemble.output.validation_predictions,
    # Names and paths are dfdetect.evaluation.evaluate.SetEvaluationPaths' (dfdetect.layout.SET_EVALUATION_FILES).
    output:
        predictions=LAYOUT.set_eval_file("{ensemble}", "{set}", "predictions", "{run}"),
        metrics=report(
            LAYOUT.set_eval_file("{ensemble}", "{set}", "metrics", "{run}"),
            caption="../report/set_metrics.rst",
            category="Evaluation sets",
            subcategory="{set}",
            labels=run_labels(model="{ensemble}", run="{run}", set="{set}", figure="metrics"),
        ),
        roc=set_plot("roc", "roc", "{ensemble}"),
        precision_recall=set_plot("precision_recall", "precision_recall", "{ensemble}"),
        confusion=set_plot("confusion", "confusion_matrix", "{ensemble}"),
        scores=set_plot("scores", "score_histograms", "{ensemble}"),
    log:
        result("logs/ensemble_set/{ensemble}{run}/{set}.log"),
    benchmark:
        result("benchmarks/ensemble_set/{ensemble}{run}/{set}.tsv")
    localrule: True
    conda:
        "../envs/prep.yaml"
    params:
        settings=lambda wildcards: config["ensembles"][wildcards.ensemble],
        evaluation=SCORING,
        calibration=CALIBRATION,
        predictions=member_outputs(rules.evaluate_set.output.predictions),
    script:
        "../workflow_scripts/ensemble_set.py"


rule report:
    input:
        clean=of_data(TRAINING_DATA, rules.clean.output.summary),
        splits=rules.split.output.summary,
        # each model's metrics, train.json, set metrics and robustness table (paths of the evaluate,
        # train, evaluate_set and robustness rules' outputs, by the same function the script uses)
        results=REPORT_FILES.all_files(),
        # for the run summary: what was ingested, kept, dropped and skipped
        videos=of_data(TRAINING_DATA, rules.manifest.output.videos),
        cleaned=of_data(TRAINING_DATA, rules.clean.output.videos),
        store_indexes=of_data(TRAINING_DATA, rules.pack.output.index, per_batch=True),
        skipped=of_data(TRAINING_DATA, rules.ingest.output.skipped, per_batch=True),
    # Names and paths are dfdetect.evaluation.report.ReportPaths' (dfdetect.layout.REPORT_FILES).
    output:
        csv=report(
            LAYOUT.report_file("comparison.csv"),
            caption="../report/comparison_csv.rst",
            category="Comparison",
            labels={"item": "comparison table (CSV, every column)"},
        ),
        runs=report(
            LAYOUT.report_file("comparison_runs.csv"),
            caption="../report/comparison_runs.rst",
            category="Comparison",
            labels={"item": "every run of every model (CSV)"},
        ),
        markdown=LAYOUT.report_file("comparison.md"),
        html=report(
            LAYOUT.report_file("comparison.html"),
            caption="../report/comparison.rst",
            category="Comparison",
            labels={"item": "comparison of the models"},
        ),
        roc=report(
            LAYOUT.report_file("roc_comparison.png"),
            caption="../report/roc_comparison.rst",
            category="Comparison",
            labels={"item": "ROC curves of every model"},
        ),
        summary=LAYOUT.report_file("run_summary.md"),
        summary_html=report(
            LAYOUT.report_file("run_summary.html"),
            caption="../report/run_summary.rst",
            category="Data",
            labels={"data": "training data", "item": "cleaning, splits and what the run read"},
        ),
        config=report(
            LAYOUT.report_file("config.html"),
            caption="../report/config.rst",
            category="Configuration",
            labels={"item": "configuration"},
        ),
    log:
        result("logs/report.log"),
    localrule: True
    conda:
        "../envs/prep.yaml"
    params:
        models={name: result_settings(entry, "model") for name, entry in config["models"].items()},
        ensembles=config["ensembles"],
        baseline=config["evaluation"]["baseline"],
        files=REPORT_FILES,
        config=results_config(config),
    script:
        "../workflow_scripts/report.py"
