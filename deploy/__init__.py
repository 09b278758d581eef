"""Deployment tooling: ECR, S3, SageMaker training jobs, endpoints and the MLOps pipeline.

- ``__main__``: ``python -m deploy``, which runs ``cli.main``.
- ``cli``: the command line: flags, the settings they override, logging, exit codes.
- ``commands``: what each command does, given the context the command line built.
- ``settings``: the one settings object (flags > ``NEWSCLF_*`` variables > config file).
- ``errors``: the exception tree; each error carries its exit code.
- ``aws``: the typed boto3 clients of one command, from one session.
- ``names``: the names this tool gives AWS resources, and the test that a name is one.
- ``ecr``: build the images, check their architecture, push them to ECR.
- ``storage``: the dataset's layout in S3, and the training channels found there.
- ``training_job``: SageMaker training jobs: create, follow with logs, read the result.
- ``endpoint``: create or blue/green-update an endpoint, wait for it, attach its scaling.
- ``endpoint_config``: the model and the endpoint config one deploy creates.
- ``scaling``: an endpoint's Application Auto Scaling: attach, remove, snapshot, restore.
- ``rollout``: a guarded update's traffic shifting, bake time and rollback alarms.
- ``async_inference``: Asynchronous Inference: its config, scaling to zero, invocation.
- ``capture``: data capture of a share of an endpoint's requests and responses.
- ``invoke``: send texts to the endpoint or to the API and return the predictions.
- ``transform``: Batch Transform jobs over the files under an S3 prefix.
- ``teardown``: delete what ``deploy`` and the API template created (or list it).
- ``pipeline``: the SageMaker Pipeline's parameters, assembled from its steps.
- ``pipeline_steps``: the pipeline's steps (prepare, train, evaluate, gate, register).
- ``pipeline_gate``: which status the gate registers a candidate with, or its refusal.
- ``pipeline_run``: start and follow pipeline executions.
- ``pipeline_commands``: the ``pipeline`` command's actions, on SageMaker or ``--local``.
- ``pipeline_local``: the pipeline's steps as local processes, no AWS.
- ``model_registry``: the model package group, on SageMaker or in a local folder.
"""
