# airnets: the two README commands (`make demo`, `make test`) and the developer targets.
# Set-up is automatic: the first target that needs it creates .venv, installs torch (the CPU build when none is
# present), the package and its compiled extensions, and is skipped afterwards until setup.py, settings.ini or csrc/ change.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.airnets-setup

.PHONY: setup shapes demo weights compare test test-fast gpu-check docs lab bench export clean
setup: $(STAMP)

$(STAMP): setup.py settings.ini $(wildcard csrc/*)
	VENV=$(VENV) bash tools/setup.sh
	touch $@

DEMO_SHAPES ?= 120
DEMO_MISE = -mise_res 64 -mise_steps 1
DEMO_GEN = $$(ls -td experiments/demo/evaluation_*_@64x1/generation | head -1)
shapes: $(STAMP)        ## the embedded dataset: $(DEMO_SHAPES) procedural shapes in data/shapes, prepared (skipped when done)
	$(BIN)/airnets_make_shapes --out data/shapes --n $(DEMO_SHAPES) --seed 0 --quiet
	$(BIN)/airnets_prepare --data_root data/shapes

# generation runs as two single-threaded shards side by side (about 12% faster than one process on two threads)
demo: shapes            ## the main job on the embedded data: the FPS demo, train a small AIR-Net (10 minutes at most), reconstruct and evaluate the 30 test shapes, write experiments/demo/report/
	$(BIN)/airnets_fps_demo --out experiments/fps_demo
	$(BIN)/airnets_train -exp_name demo -cfg_file demo -data_type ifnet --data_root data/shapes
	OMP_NUM_THREADS=1 $(BIN)/airnets_generate -exp_name demo -data_type ifnet --data_root data/shapes $(DEMO_MISE) --shard 1/2 --quiet > experiments/demo/generate_shard1.log 2>&1 & p=$$!; \
	  OMP_NUM_THREADS=1 $(BIN)/airnets_generate -exp_name demo -data_type ifnet --data_root data/shapes $(DEMO_MISE) --shard 0/2 --quiet; r=$$?; \
	  wait $$p; r1=$$?; cat experiments/demo/generate_shard1.log; [ $$r -eq 0 ] && [ $$r1 -eq 0 ]
	GEN=$(DEMO_GEN) && \
	  $(BIN)/airnets_evaluate -generation_path $$GEN -data_type ifnet --quiet && \
	  $(BIN)/airnets_evaluate_gather -generation_path $$GEN -data_type ifnet && \
	  $(BIN)/airnets_report -exp_name demo -generation_path $$GEN

weights: demo           ## rebuild the shipped weights: make demo's best checkpoint, with its test scores, into airnets/weights/demo.pt
	$(BIN)/airnets_export_weights -exp_name demo -o airnets/weights/demo.pt --generation_path $(DEMO_GEN) \
	  --data "the embedded dataset: airnets_make_shapes --n $(DEMO_SHAPES) --seed 0 (75 train / 15 val / 30 test shapes, 15 classes), prepared by airnets_prepare"

compare: shapes         ## the four models at the same CPU budget, 300 and 3000 input points, noise 0.005: bench/comparison.md
	$(BIN)/python bench/compare.py

test: $(STAMP)          ## every test: export/clean check, nvcc compile check, notebooks, docs site + browser, pytest
	VENV=$(VENV) bash tools/test.sh

# the developer loop: what make test checks minus the notebooks, the docs site and the tests marked slow (training,
# real meshes, the general model, the second and later cases of a family of fresh processes), browser or cuda in
# pyproject.toml. About 110 tests; every command's parser is checked in-process, one command of each kind as a fresh
# process: 2 min 0 s measured (its pytest alone: 1 min 38 s; 8 min 5 s before the slow marks) while both cores trained a model
test-fast: $(STAMP)     ## quick checks while developing: export/clean check, pytest -m "not slow and not browser and not cuda"; no notebooks
	source $(BIN)/activate && bash tools/check_export.sh && python -m pytest tests -q -rs -m "not slow and not browser and not cuda"

gpu-check: $(STAMP)     ## on a machine with a GPU: the CUDA build, the #| cuda cells, training with autocast, generation, CPU/GPU agreement (tools/gpu_check.py)
	$(BIN)/python tools/gpu_check.py

docs: $(STAMP)          ## the documentation site in _build/html (nbdev_docs where Quarto exists)
	VENV=$(VENV) bash tools/build_docs.sh

lab: $(STAMP)           ## JupyterLab on nbs/ with the package importable
	$(BIN)/python -c "import jupyterlab" 2>/dev/null || $(BIN)/pip install -q jupyterlab
	$(BIN)/jupyter lab --notebook-dir=nbs $(if $(filter 0,$(shell id -u)),--allow-root)

bench: $(STAMP)         ## performance tables (bench/*.py)
	VENV=$(VENV) bash tools/bench.sh

export: $(STAMP)        ## notebooks -> airnets/, clean notebooks, README from nbs/index.ipynb
	$(BIN)/nbdev_export && $(BIN)/nbdev_clean && $(BIN)/python tools/readme.py

clean:
	rm -rf build _build _proc airnets/*.so *.egg-info
