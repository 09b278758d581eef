"""Training side: data preparation, fine-tuning and the SageMaker training contract.

The job (``python -m training``):

- ``__main__``: the thin ``main(argv)`` entry point the image's ``train`` runs.
- ``sagemaker_env``: the SageMaker training contract (paths, config files, failure file).
- ``hyperparameters``: ``Hyperparameters``, the one validated settings object of a job.
- ``job``: one job start to finish: load -> tokenize -> train -> evaluate -> save.
- ``base_model``: which base model a job fine-tunes, and loading it with our labels.
- ``job_reports``: the job's reports and the artifact's metadata.
- ``train``: the fine-tuning loop and ``TrainResult``, the result of a job.
- ``batching``: token ids, length-grouped batches, dynamic padding.
- ``precision``: bf16 / fp16 / fp32, chosen once per job.
- ``checkpoint``: atomic checkpoints, resume, the SIGTERM flag.
- ``distributed``: relaunch under torchrun, DDP collectives.
- ``evaluate``: sharded predictions and the test report.
- ``errors``: the error tree (``JobError`` and its kinds).

The data and the reports around it:

- ``data``: the package from the UCI file (or prepared splits) to train/validation/test.
- ``chunk_tokenize``: fast, exact tokenization of headlines: ids and token counts.
- ``prepare``: ``python -m training.prepare``, raw file -> Parquet splits + data report.
- ``download``: ``python -m training.download``, fetch and check the UCI zip.
- ``eda``: ``python -m training.eda``, the data report; ``eda_plots``: its plots.
- ``baseline``: ``python -m training.baseline``, the TF-IDF + linear SVM baseline.
- ``metrics``: accuracy, macro-F1, the confusion matrix and its plot.
- ``model_comparison``: two classifiers on one test split, with a story bootstrap interval.
- ``evaluate_candidate``: ``python -m training.evaluate_candidate``, the pipeline's evaluation.
- ``drift``: ``python -m training.drift``, captured traffic against the EDA report;
  ``captured_traffic``: reading SageMaker data-capture files.
"""
