"""The peer model servers of ``benchmarks/bench_peers.py``, and what they need.

- ``peers.launchers``: start the Hugging Face SageMaker inference toolkit and TorchServe on
  an artifact, as their users run them, and stop them with all their processes.
- ``peers/torchserve_handler.py``: the TorchServe handler archived with the model (it imports
  only torch and transformers: it runs in TorchServe's venv).
- ``peers/setup.sh`` and ``peers/*.lock.txt``: the peers' venvs, outside the repository.
"""
