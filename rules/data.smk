# Data stages: demo data (demo datasets only), manifest (a checkpoint: it decides the shards), resize (a job of
# its own only with preprocess.keep_clips: by default the keypoint job resizes on the fly).


rule demo_data:
    output:
        directory(f"{RESULTS}/{{dataset}}/demo"),
    log:
        "logs/demo_data/{dataset}.log",
    benchmark:
        "benchmarks/demo_data/{dataset}.tsv"
    conda:
        "../envs/hatl.yaml"
    threads: 1
    resources:
        mem_mb=lambda w, attempt: attempt_scaled(2000, attempt),
        runtime=lambda w, attempt: attempt_scaled(10, attempt),
    params:
        config=lambda w: resolved_config(w.dataset),
        settings=lambda w: settings_read_by("demo-data", w.dataset),
    shell:
        "hatl demo-data --config {params.config} --dataset {wildcards.dataset} --out-dir {output} > {log} 2>&1"


checkpoint manifest:
    input:
        unpack(manifest_inputs),
    output:
        manifest=f"{RESULTS}/{{dataset}}/manifest.parquet",
        splits=f"{RESULTS}/{{dataset}}/splits.tsv",
    log:
        "logs/manifest/{dataset}.log",
    benchmark:
        "benchmarks/manifest/{dataset}.tsv"
    conda:
        "../envs/hatl.yaml"
    threads: 1
    resources:
        mem_mb=lambda w, attempt: attempt_scaled(2000, attempt),
        runtime=lambda w, attempt: attempt_scaled(10, attempt),
    params:
        config=lambda w: resolved_config(w.dataset),
        settings=lambda w: settings_read_by("manifest", w.dataset),
    shell:
        "hatl manifest --config {params.config} --dataset {wildcards.dataset}"
        " --out {output.manifest} --splits-out {output.splits} > {log} 2>&1"


rule resize:
    input:
        manifest=lambda w: manifest_of(w.dataset),
    output:
        f"{RESULTS}/{{dataset}}/clips/shard-{{shard}}.npz",
    log:
        "logs/resize/{dataset}/shard-{shard}.log",
    benchmark:
        "benchmarks/resize/{dataset}/shard-{shard}.tsv"
    conda:
        "../envs/hatl.yaml"
    threads: 1
    resources:
        mem_mb=lambda w, attempt: attempt_scaled(2000, attempt),
        runtime=lambda w, attempt: attempt_scaled(30, attempt),
    params:
        config=lambda w: resolved_config(w.dataset),
        settings=lambda w: settings_read_by("resize", w.dataset),
    shell:
        "hatl resize --config {params.config} --dataset {wildcards.dataset} --manifest {input.manifest}"
        " --shard {wildcards.shard} --out {output} > {log} 2>&1"
