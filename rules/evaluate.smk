# Evaluation: beam search with KenLM fusion on dev and test, then scoring. A trained run is decoded by
# rule decode; Sign2Gloss2Text by rule cascade_decode, which chains a sign2gloss and a gloss2text run.


rule decode:
    input:
        best=f"{RESULTS}/runs/{{dataset}}/{{model}}/{{task}}/{{strategy}}/{{fold}}/{{seed}}/best.pt",
        lm=decode_lm,
        vocab=lambda w: vocab_json(w.dataset, w.fold),
        source=decode_source,
    output:
        dev=f"{RESULTS}/runs/{{dataset}}/{{model}}/{{task}}/{{strategy}}/{{fold}}/{{seed}}/decoded.dev.jsonl",
        test=f"{RESULTS}/runs/{{dataset}}/{{model}}/{{task}}/{{strategy}}/{{fold}}/{{seed}}/decoded.test.jsonl",
        summary=f"{RESULTS}/runs/{{dataset}}/{{model}}/{{task}}/{{strategy}}/{{fold}}/{{seed}}/decoded.summary.json",
    log:
        "logs/decode/{dataset}/{model}/{task}/{strategy}/{fold}/{seed}.log",
    benchmark:
        "benchmarks/decode/{dataset}/{model}/{task}/{strategy}/{fold}/{seed}.tsv"
    wildcard_constraints:
        task="|".join(TRAINED_TASKS),
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
        source=lambda w, input: (
            f"--manifest {input.source}"
            if w.task in TEXT_ONLY_TASKS
            else f"--data-dir {input.source}"
        ),
        lm=lambda w, input: f"--lm {input.lm}" if input.lm else "",
    shell:
        "hatl decode --config {params.config} --run-dir {params.run_dir} {params.source}"
        " --vocab-dir {params.vocab_dir} {params.lm} --out-dir {params.run_dir} > {log} 2>&1"


rule cascade_decode:
    input:
        unpack(cascade_inputs),
        lm=lambda w: f"{lm_stem(w.dataset, w.fold)}.bin",
        vocab=lambda w: vocab_json(w.dataset, w.fold),
        source=f"{RESULTS}/{{dataset}}/normalised",
    output:
        dev=f"{RESULTS}/runs/{{dataset}}/{{model}}/sign2gloss2text/{{strategy}}/{{fold}}/{{seed}}/decoded.dev.jsonl",
        test=f"{RESULTS}/runs/{{dataset}}/{{model}}/sign2gloss2text/{{strategy}}/{{fold}}/{{seed}}/decoded.test.jsonl",
        summary=f"{RESULTS}/runs/{{dataset}}/{{model}}/sign2gloss2text/{{strategy}}/{{fold}}/{{seed}}/decoded.summary.json",
    log:
        "logs/decode/{dataset}/{model}/sign2gloss2text/{strategy}/{fold}/{seed}.log",
    benchmark:
        "benchmarks/decode/{dataset}/{model}/sign2gloss2text/{strategy}/{fold}/{seed}.tsv"
    conda:
        "../envs/hatl.yaml"
    threads: 1
    resources:
        mem_mb=lambda w, attempt: attempt_scaled(4000, attempt),
        runtime=lambda w, attempt: attempt_scaled(60, attempt),
    params:
        config=lambda w: resolved_config(w.dataset),
        settings=lambda w: settings_read_by("decode", w.dataset),
        recogniser=lambda w, input: str(Path(input.recogniser).parent),
        translator=lambda w, input: str(Path(input.translator).parent),
        out_dir=lambda w, output: str(Path(output.dev).parent),
        vocab_dir=lambda w, input: str(Path(input.vocab).parent),
    shell:
        "hatl decode --config {params.config} --run-dir {params.recogniser} --translator-run {params.translator}"
        " --data-dir {input.source} --vocab-dir {params.vocab_dir} --lm {input.lm}"
        " --out-dir {params.out_dir} > {log} 2>&1"


rule score:
    input:
        dev=f"{RESULTS}/runs/{{dataset}}/{{model}}/{{task}}/{{strategy}}/{{fold}}/{{seed}}/decoded.dev.jsonl",
        test=f"{RESULTS}/runs/{{dataset}}/{{model}}/{{task}}/{{strategy}}/{{fold}}/{{seed}}/decoded.test.jsonl",
    output:
        f"{RESULTS}/runs/{{dataset}}/{{model}}/{{task}}/{{strategy}}/{{fold}}/{{seed}}/scores.json",
    log:
        "logs/score/{dataset}/{model}/{task}/{strategy}/{fold}/{seed}.log",
    benchmark:
        "benchmarks/score/{dataset}/{model}/{task}/{strategy}/{fold}/{seed}.tsv"
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
