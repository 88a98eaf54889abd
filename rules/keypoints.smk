# Keypoint stages: MediaPipe Holistic (or .npy / demo conversion) per shard, then normalisation per split.
# A video/frames shard is decoded, resized and extracted in this one job unless preprocess.keep_clips asks for
# the clip shard of a separate `resize` job (rules/data.smk).


rule keypoints:
    input:
        unpack(keypoint_inputs),
    output:
        f"{RESULTS}/{{dataset}}/keypoints/shard-{{shard}}.parquet",
    log:
        "logs/keypoints/{dataset}/shard-{shard}.log",
    benchmark:
        "benchmarks/keypoints/{dataset}/shard-{shard}.tsv"
    conda:
        "../envs/hatl.yaml"
    threads: 1
    resources:
        mem_mb=lambda w, attempt: attempt_scaled(3000, attempt),
        runtime=keypoint_runtime,
    params:
        config=lambda w: resolved_config(w.dataset),
        settings=lambda w: settings_read_by("keypoints", w.dataset),
        clips=lambda w, input: (
            f"--clips {input.clips}" if "clips" in input.keys() else ""
        ),
    shell:
        "hatl keypoints --config {params.config} --dataset {wildcards.dataset} --manifest {input.manifest}"
        " --shard {wildcards.shard} {params.clips} --out {output} > {log} 2>&1"


rule normalise:
    input:
        manifest=lambda w: manifest_of(w.dataset),
        shards=keypoint_shards,
    output:
        directory(f"{RESULTS}/{{dataset}}/normalised"),
    log:
        "logs/normalise/{dataset}.log",
    benchmark:
        "benchmarks/normalise/{dataset}.tsv"
    conda:
        "../envs/hatl.yaml"
    threads: 1
    resources:
        mem_mb=lambda w, attempt: attempt_scaled(4000, attempt),
        runtime=lambda w, attempt: attempt_scaled(30, attempt),
    params:
        config=lambda w: resolved_config(w.dataset),
        settings=lambda w: settings_read_by("normalise", w.dataset),
    shell:
        "hatl normalise --config {params.config} --dataset {wildcards.dataset} --manifest {input.manifest}"
        " --keypoints {input.shards} --out-dir {output} > {log} 2>&1"
