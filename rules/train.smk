# Training: one job per dataset x model x trained task x strategy x fold x seed ({seed}: seed<N>, training.seeds;
# sign2gloss2text: see rule cascade_decode). Resume state lives under resume/,
# which is not a declared output, so a rerun after a kill continues where the job stopped.


rule train:
    input:
        unpack(train_inputs),
    output:
        best=f"{RESULTS}/runs/{{dataset}}/{{model}}/{{task}}/{{strategy}}/{{fold}}/{{seed}}/best.pt",
        log=f"{RESULTS}/runs/{{dataset}}/{{model}}/{{task}}/{{strategy}}/{{fold}}/{{seed}}/log.jsonl",
        summary=f"{RESULTS}/runs/{{dataset}}/{{model}}/{{task}}/{{strategy}}/{{fold}}/{{seed}}/summary.json",
    log:
        "logs/train/{dataset}/{model}/{task}/{strategy}/{fold}/{seed}.log",
    benchmark:
        "benchmarks/train/{dataset}/{model}/{task}/{strategy}/{fold}/{seed}.tsv"
    wildcard_constraints:
        task="|".join(TRAINED_TASKS),  # Sign2Gloss2Text is decoded from two trained runs, never trained
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
        resume_dir="resume/{dataset}/{model}/{task}/{strategy}/{fold}/{seed}",
        nproc=lambda w, resources: max(1, int(resources.gpu)),
        seed=lambda w: seed_of(w.seed),
        vocab_dir=lambda w, input: str(Path(input.vocab).parent),
        data=lambda w, input: (
            f"--data-dir {input.data} --backbone {input.backbone}"
            if "data" in input.keys()
            else f"--manifest {input.manifest}"
        ),
    shell:
        "hatl train --config {params.config} --dataset {wildcards.dataset} --model {wildcards.model}"
        " --task {wildcards.task} --strategy {wildcards.strategy} --fold {wildcards.fold} --seed {params.seed}"
        " {params.data} --vocab-dir {params.vocab_dir} --out-dir {params.out_dir}"
        " --resume-dir {params.resume_dir} --threads {threads} --nproc {params.nproc} > {log} 2>&1"
