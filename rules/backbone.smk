# Backbone: pretraining when no checkpoint is configured (the demo's own, supervised on a named real
# source, or masked-keypoint reconstruction on the configured datasets + the sources: backbone.pretrain),
# then the import of a pyskl-format ST-GCN++ checkpoint onto each dataset's MediaPipe graph; last, the
# pretraining table (one downstream run per backbone source).


# The demo's window pretraining, from random weights (`demo`) or, under `backbone.pretrain.method: two_stage`,
# from the supervised checkpoint of the real source (`two_stage`, input function demo_pretrain_inputs).
rule pretrain_demo:
    input:
        unpack(demo_pretrain_inputs),
    output:
        f"{RESULTS}/pretrained/stgcnpp_{{start}}.pth",
    log:
        "logs/pretrain_{start}.log",
    benchmark:
        "benchmarks/pretrain_{start}.tsv"
    wildcard_constraints:
        start="demo|two_stage",
    conda:
        "../envs/hatl.yaml"
    threads: 1
    resources:
        mem_mb=lambda w, attempt: attempt_scaled(4000, attempt),
        runtime=lambda w, attempt: attempt_scaled(30, attempt),
    params:
        config=lambda w: resolved_config(demo_pretrain_source()),
        settings=lambda w: settings_read_by("pretrain-demo", demo_pretrain_source()),
        split=lambda w: splits_of(demo_pretrain_source())[0],
        fold=lambda w: demo_pretrain_fold(),
        start=demo_pretrain_start_args,
    shell:
        "hatl pretrain-demo --config {params.config} --data {input.data}/{params.split}.parquet"
        " --fold {params.fold} --threads {threads} {params.start} --out {output} > {log} 2>&1"


rule pretrain_data:
    output:
        manifest=f"{RESULTS}/pretraining/{{source}}/manifest.parquet",
        splits=f"{RESULTS}/pretraining/{{source}}/splits.tsv",
        keypoints=directory(f"{RESULTS}/pretraining/{{source}}/keypoints"),
    log:
        "logs/pretrain_data/{source}.log",
    benchmark:
        "benchmarks/pretrain_data/{source}.tsv"
    conda:
        "../envs/hatl.yaml"
    threads: 1
    resources:
        mem_mb=lambda w, attempt: attempt_scaled(2000, attempt),
        runtime=lambda w, attempt: attempt_scaled(15, attempt),
    params:
        config=lambda w: resolved_config(),
        settings=lambda w: settings_read_by("pretrain-data"),
        out_dir=lambda w: f"{RESULTS}/pretraining/{w.source}",
    shell:
        "hatl pretrain-data --config {params.config} --source {wildcards.source}"
        " --out-dir {params.out_dir} > {log} 2>&1"


rule pretrain_supervised_loso:
    input:
        manifest=f"{RESULTS}/pretraining/{{source}}/manifest.parquet",
        keypoints=f"{RESULTS}/pretraining/{{source}}/keypoints",
    output:
        table=f"{RESULTS}/pretraining/{{source}}.csv",
        report=f"{RESULTS}/pretraining/{{source}}.json",
    log:
        "logs/pretrain_supervised_loso/{source}.log",
    benchmark:
        "benchmarks/pretrain_supervised_loso/{source}.tsv"
    conda:
        "../envs/hatl.yaml"
    threads: 2
    resources:
        mem_mb=lambda w, attempt: attempt_scaled(4000, attempt),
        runtime=lambda w, attempt: attempt_scaled(120, attempt),
    params:
        config=lambda w: resolved_config(pretrain_arch_dataset()),
        settings=lambda w: settings_read_by(
            "pretrain-supervised", pretrain_arch_dataset()
        ),
    shell:
        "hatl pretrain-supervised --config {params.config} --manifest {input.manifest}"
        " --keypoints {input.keypoints}/*.parquet --threads {threads}"
        " --csv {output.table} --report {output.report} > {log} 2>&1"


rule pretrain_supervised:
    input:
        manifest=f"{RESULTS}/pretraining/{{source}}/manifest.parquet",
        keypoints=f"{RESULTS}/pretraining/{{source}}/keypoints",
    output:
        checkpoint=f"{RESULTS}/pretrained/stgcnpp_{{source}}.pth",
    log:
        "logs/pretrain_supervised/{source}.log",
    benchmark:
        "benchmarks/pretrain_supervised/{source}.tsv"
    conda:
        "../envs/hatl.yaml"
    threads: 1
    resources:
        mem_mb=lambda w, attempt: attempt_scaled(4000, attempt),
        runtime=lambda w, attempt: attempt_scaled(30, attempt),
    params:
        config=lambda w: resolved_config(supervised_arch_dataset()),
        settings=lambda w: settings_read_by(
            "pretrain-supervised", supervised_arch_dataset()
        ),
    shell:
        "hatl pretrain-supervised --config {params.config} --manifest {input.manifest}"
        " --keypoints {input.keypoints}/*.parquet --threads {threads}"
        " --out {output.checkpoint} > {log} 2>&1"


rule pretrain_masked:
    input:
        data=[f"{RESULTS}/{ds}/normalised" for ds in DATASETS],
        sources=lambda w: [
            f"{RESULTS}/pretraining/{s}/keypoints" for s in masked_pretrain_sources()
        ],
    output:
        checkpoint=f"{RESULTS}/pretrained/stgcnpp_masked.pth",
        report=f"{RESULTS}/pretraining/masked.json",
    log:
        "logs/pretrain_masked.log",
    benchmark:
        "benchmarks/pretrain_masked.tsv"
    conda:
        "../envs/hatl.yaml"
    threads: 1
    resources:
        mem_mb=lambda w, attempt: attempt_scaled(4000, attempt),
        runtime=lambda w, attempt: attempt_scaled(60, attempt),
    params:
        config=lambda w: resolved_config(pretrain_arch_dataset()),
        settings=lambda w: settings_read_by("pretrain-masked", pretrain_arch_dataset()),
        data=lambda w: " ".join(path for path, _ in masked_pretrain_data()),
        folds=lambda w: " ".join(fold for _, fold in masked_pretrain_data()),
        sources=lambda w: " ".join(
            f"{RESULTS}/pretraining/{s}/keypoints/*.parquet"
            for s in masked_pretrain_sources()
        ),
    shell:
        "hatl pretrain-masked --config {params.config} --data {params.data} --folds {params.folds}"
        " --sources {params.sources} --threads {threads}"
        " --out {output.checkpoint} --report {output.report} > {log} 2>&1"


rule import_backbone:
    input:
        checkpoint=backbone_checkpoint,
    output:
        weights=f"{RESULTS}/{{dataset}}/backbone/stgcnpp.pt",
        report=f"{RESULTS}/{{dataset}}/backbone/import_report.json",
    log:
        "logs/import_backbone/{dataset}.log",
    benchmark:
        "benchmarks/import_backbone/{dataset}.tsv"
    conda:
        "../envs/hatl.yaml"
    threads: 1
    resources:
        mem_mb=lambda w, attempt: attempt_scaled(2000, attempt),
        runtime=lambda w, attempt: attempt_scaled(10, attempt),
    params:
        config=lambda w: resolved_config(w.dataset),
        settings=lambda w: settings_read_by("import-backbone", w.dataset),
    shell:
        "hatl import-backbone --config {params.config} --checkpoint {input.checkpoint}"
        " --dataset {wildcards.dataset} --out {output.weights} --report {output.report} > {log} 2>&1"


# --- the pretraining table: one downstream run per backbone source (backbone.pretrain.table) ---
rule pretraining_random_backbone:
    output:
        weights=f"{PRETRAIN_RUNS}/none/{{dataset}}/backbone/stgcnpp.pt",
        report=f"{PRETRAIN_RUNS}/none/{{dataset}}/backbone/import_report.json",
    log:
        "logs/pretraining_runs/none/{dataset}/backbone.log",
    benchmark:
        "benchmarks/pretraining_runs/none/{dataset}/backbone.tsv"
    conda:
        "../envs/hatl.yaml"
    threads: 1
    resources:
        mem_mb=lambda w, attempt: attempt_scaled(2000, attempt),
        runtime=lambda w, attempt: attempt_scaled(10, attempt),
    params:
        config=lambda w: resolved_config(w.dataset),
        settings=lambda w: settings_read_by("random-backbone", w.dataset),
    shell:
        "hatl random-backbone --config {params.config} --out {output.weights}"
        " --report {output.report} > {log} 2>&1"


rule pretraining_import_backbone:
    input:
        checkpoint=lambda w: source_checkpoint(w.backbone_source, w.dataset),
    output:
        weights=f"{PRETRAIN_RUNS}/{{backbone_source}}/{{dataset}}/backbone/stgcnpp.pt",
        report=f"{PRETRAIN_RUNS}/{{backbone_source}}/{{dataset}}/backbone/import_report.json",
    log:
        "logs/pretraining_runs/{backbone_source}/{dataset}/backbone.log",
    benchmark:
        "benchmarks/pretraining_runs/{backbone_source}/{dataset}/backbone.tsv"
    wildcard_constraints:
        backbone_source=r"demo|isl_kinect|masked|two_stage|pyskl",
    conda:
        "../envs/hatl.yaml"
    threads: 1
    resources:
        mem_mb=lambda w, attempt: attempt_scaled(2000, attempt),
        runtime=lambda w, attempt: attempt_scaled(10, attempt),
    params:
        config=lambda w: resolved_config(w.dataset),
        settings=lambda w: settings_read_by("import-backbone", w.dataset),
    shell:
        "hatl import-backbone --config {params.config} --checkpoint {input.checkpoint}"
        " --dataset {wildcards.dataset} --out {output.weights} --report {output.report} > {log} 2>&1"


rule pretraining_train:
    input:
        data=f"{RESULTS}/{{dataset}}/normalised",
        vocab=lambda w: vocab_json(w.dataset, w.fold),
        backbone=f"{PRETRAIN_RUNS}/{{backbone_source}}/{{dataset}}/backbone/stgcnpp.pt",
    output:
        best=f"{PRETRAIN_RUN}/best.pt",
        log=f"{PRETRAIN_RUN}/log.jsonl",
        summary=f"{PRETRAIN_RUN}/summary.json",
    log:
        "logs/pretraining_runs/{backbone_source}/train/{dataset}/{model}/{task}/{strategy}/{fold}/{seed}.log",
    benchmark:
        "benchmarks/pretraining_runs/{backbone_source}/train/{dataset}/{model}/{task}/{strategy}/{fold}/{seed}.tsv"
    wildcard_constraints:
        backbone_source=r"none|demo|isl_kinect|masked|two_stage|pyskl",
    conda:
        "../envs/hatl.yaml"
    threads: 1
    resources:
        gpu=1,
        mem_mb=lambda w, attempt: attempt_scaled(8000, attempt),
        runtime=lambda w, attempt: attempt_scaled(12 * 60, attempt),
    params:
        config=lambda w: resolved_config(w.dataset),
        settings=lambda w: settings_read_by("train", w.dataset),
        out_dir=lambda w, output: str(Path(output.best).parent),
        resume_dir="resume/pretraining_runs/{backbone_source}/{dataset}/{model}/{task}/{strategy}/{fold}/{seed}",
        seed=lambda w: seed_of(w.seed),
        vocab_dir=lambda w, input: str(Path(input.vocab).parent),
    shell:
        "hatl train --config {params.config} --dataset {wildcards.dataset} --model {wildcards.model}"
        " --task {wildcards.task} --strategy {wildcards.strategy} --fold {wildcards.fold} --seed {params.seed}"
        " --data-dir {input.data} --backbone {input.backbone} --vocab-dir {params.vocab_dir}"
        " --out-dir {params.out_dir} --resume-dir {params.resume_dir} --threads {threads} > {log} 2>&1"


rule pretraining_decode:
    input:
        best=f"{PRETRAIN_RUN}/best.pt",
        lm=decode_lm,
        vocab=lambda w: vocab_json(w.dataset, w.fold),
        data=f"{RESULTS}/{{dataset}}/normalised",
    output:
        dev=f"{PRETRAIN_RUN}/decoded.dev.jsonl",
        test=f"{PRETRAIN_RUN}/decoded.test.jsonl",
        summary=f"{PRETRAIN_RUN}/decoded.summary.json",
    log:
        "logs/pretraining_runs/{backbone_source}/decode/{dataset}/{model}/{task}/{strategy}/{fold}/{seed}.log",
    benchmark:
        "benchmarks/pretraining_runs/{backbone_source}/decode/{dataset}/{model}/{task}/{strategy}/{fold}/{seed}.tsv"
    wildcard_constraints:
        backbone_source=r"none|demo|isl_kinect|masked|two_stage|pyskl",
    conda:
        "../envs/hatl.yaml"
    threads: 1
    resources:
        mem_mb=lambda w, attempt: attempt_scaled(4000, attempt),
        runtime=lambda w, attempt: attempt_scaled(60, attempt),
    params:
        config=lambda w: resolved_config(w.dataset),
        settings=lambda w: settings_read_by("decode", w.dataset),
        run_dir=lambda w, input: str(Path(input.best).parent),
        vocab_dir=lambda w, input: str(Path(input.vocab).parent),
        lm=lambda w, input: f"--lm {input.lm}" if input.lm else "",
    shell:
        "hatl decode --config {params.config} --run-dir {params.run_dir} --data-dir {input.data}"
        " --vocab-dir {params.vocab_dir} {params.lm} --out-dir {params.run_dir} > {log} 2>&1"


rule pretraining_score:
    input:
        dev=f"{PRETRAIN_RUN}/decoded.dev.jsonl",
        test=f"{PRETRAIN_RUN}/decoded.test.jsonl",
    output:
        f"{PRETRAIN_RUN}/scores.json",
    log:
        "logs/pretraining_runs/{backbone_source}/score/{dataset}/{model}/{task}/{strategy}/{fold}/{seed}.log",
    benchmark:
        "benchmarks/pretraining_runs/{backbone_source}/score/{dataset}/{model}/{task}/{strategy}/{fold}/{seed}.tsv"
    wildcard_constraints:
        backbone_source=r"none|demo|isl_kinect|masked|two_stage|pyskl",
    conda:
        "../envs/hatl.yaml"
    threads: 1
    resources:
        mem_mb=lambda w, attempt: attempt_scaled(1000, attempt),
        runtime=lambda w, attempt: attempt_scaled(10, attempt),
    params:
        config=lambda w: resolved_config(w.dataset),
        settings=lambda w: settings_read_by("score", w.dataset),
    shell:
        "hatl score --config {params.config} --decoded {input.dev} {input.test} --out {output} > {log} 2>&1"


rule table_pretraining:
    input:
        scores=lambda w: [
            f"{pretraining_table_run(s)}/scores.json"
            for s in pretraining_table()["sources"]
        ],
        reports=lambda w: [
            source_report(s, pretraining_table().get("dataset") or DATASETS[0])
            for s in pretraining_table()["sources"]
        ],
    output:
        table=f"{RESULTS}/table_pretraining.csv",
        md=f"{RESULTS}/table_pretraining.md",
        sidecar=f"{RESULTS}/table_pretraining.json",
        figure=f"{RESULTS}/figures/pretraining.png",
    log:
        "logs/table_pretraining.log",
    benchmark:
        "benchmarks/table_pretraining.tsv"
    conda:
        "../envs/hatl.yaml"
    threads: 1
    resources:
        mem_mb=lambda w, attempt: attempt_scaled(2000, attempt),
        runtime=lambda w, attempt: attempt_scaled(10, attempt),
    params:
        config=lambda w: resolved_config(pretrain_arch_dataset()),
        settings=lambda w: settings_read_by(
            "table-pretraining", pretrain_arch_dataset()
        ),
        scores=lambda w, input: " ".join(
            f"{s}={p}" for s, p in zip(pretraining_table()["sources"], input.scores)
        ),
        reports=lambda w, input: " ".join(
            f"{s}={p}" for s, p in zip(pretraining_table()["sources"], input.reports)
        ),
    shell:
        "hatl table-pretraining --config {params.config} --scores {params.scores}"
        " --reports {params.reports} --out {output.table} --figure {output.figure} > {log} 2>&1"
